import Foundation
import Synchronization
import VaultCore

/// The patterns that precede or reveal model theft, beyond brute force and canaries (server
/// config `audit.alerts`).
public struct AlertConfiguration: Codable, Sendable, Equatable {
    /// Bulk exfiltration: one token or user pulling more than this in one window — and more than
    /// `baselineFactor` times its own average over its recent active windows.
    public struct Bulk: Codable, Sendable, Equatable {
        public var windowSeconds: Int = 3600
        /// Distinct models pulled in a window (nil: no limit).
        public var maxModels: Int? = 20
        /// Distinct model versions pulled in a window.
        public var maxVersions: Int? = 50
        /// Bytes sent in a window.
        public var maxBytes: UInt64?
        /// How many past windows make the baseline.
        public var baselineWindows: Int = 168
        public var baselineFactor: Double = 3

        public init(
            windowSeconds: Int = 3600, maxModels: Int? = 20, maxVersions: Int? = 50, maxBytes: UInt64? = nil,
            baselineWindows: Int = 168, baselineFactor: Double = 3
        ) {
            self.windowSeconds = windowSeconds
            self.maxModels = maxModels
            self.maxVersions = maxVersions
            self.maxBytes = maxBytes
            self.baselineWindows = baselineWindows
            self.baselineFactor = baselineFactor
        }

        public init(from decoder: any Decoder) throws {
            let c = try decoder.container(keyedBy: CodingKeys.self)
            windowSeconds = try c.decodeIfPresent(Int.self, forKey: .windowSeconds) ?? 3600
            maxModels = c.contains(.maxModels) ? try c.decodeIfPresent(Int.self, forKey: .maxModels) : 20
            maxVersions = c.contains(.maxVersions) ? try c.decodeIfPresent(Int.self, forKey: .maxVersions) : 50
            maxBytes = try c.decodeIfPresent(UInt64.self, forKey: .maxBytes)
            baselineWindows = try c.decodeIfPresent(Int.self, forKey: .baselineWindows) ?? 168
            baselineFactor = try c.decodeIfPresent(Double.self, forKey: .baselineFactor) ?? 3
        }
    }

    /// When people holding any of `roles` are expected: `days` (mon…sun), from `from` to `to`
    /// (HH:MM; `to` before `from` spans midnight) in `timeZone`.
    public struct Hours: Codable, Sendable, Equatable {
        public var roles: [String]
        public var days: [String] = ["mon", "tue", "wed", "thu", "fri"]
        public var from: String = "07:00"
        public var to: String = "20:00"
        public var timeZone: String = "UTC"

        public init(
            roles: [String], days: [String] = ["mon", "tue", "wed", "thu", "fri"], from: String = "07:00",
            to: String = "20:00", timeZone: String = "UTC"
        ) {
            self.roles = roles
            self.days = days
            self.from = from
            self.to = to
            self.timeZone = timeZone
        }

        public init(from decoder: any Decoder) throws {
            let c = try decoder.container(keyedBy: CodingKeys.self)
            roles = try c.decode([String].self, forKey: .roles)
            days = try c.decodeIfPresent([String].self, forKey: .days) ?? ["mon", "tue", "wed", "thu", "fri"]
            from = try c.decodeIfPresent(String.self, forKey: .from) ?? "07:00"
            to = try c.decodeIfPresent(String.self, forKey: .to) ?? "20:00"
            timeZone = try c.decodeIfPresent(String.self, forKey: .timeZone) ?? "UTC"
        }
    }

    public var bulk = Bulk()
    /// Alert when an API token is used from a network (its /24, or /64 for IPv6) it was never used from.
    public var newTokenNetworks = true
    public var hours: [Hours] = []

    public init(bulk: Bulk = Bulk(), newTokenNetworks: Bool = true, hours: [Hours] = []) {
        self.bulk = bulk
        self.newTokenNetworks = newTokenNetworks
        self.hours = hours
    }

    public init(from decoder: any Decoder) throws {
        let c = try decoder.container(keyedBy: CodingKeys.self)
        bulk = try c.decodeIfPresent(Bulk.self, forKey: .bulk) ?? Bulk()
        newTokenNetworks = try c.decodeIfPresent(Bool.self, forKey: .newTokenNetworks) ?? true
        hours = try c.decodeIfPresent([Hours].self, forKey: .hours) ?? []
    }

    /// What is wrong with it, if anything.
    func problem() -> String? {
        guard bulk.windowSeconds >= 1, bulk.baselineWindows >= 0, bulk.baselineFactor >= 0 else {
            return "bulk.windowSeconds must be at least 1, baselineWindows and baselineFactor not negative"
        }
        for (i, hours) in hours.enumerated() {
            do { _ = try Schedule(hours) } catch { return "hours[\(i)]: \(error)" }
        }
        return nil
    }
}

/// One `Hours` entry, ready to ask whether a moment lies inside it.
struct Schedule: Sendable {
    static let dayNames = ["sun", "mon", "tue", "wed", "thu", "fri", "sat"]
    let roles: Set<String>
    /// Calendar weekdays, 1 (Sunday) to 7.
    let days: Set<Int>
    let from: Int
    let to: Int
    let calendar: Calendar

    init(_ hours: AlertConfiguration.Hours) throws(VaultError) {
        guard !hours.roles.isEmpty else { throw .invalidArgument("name at least one role") }
        roles = Set(hours.roles)
        var days = Set<Int>()
        for day in hours.days {
            guard let index = Self.dayNames.firstIndex(of: day.lowercased()) else {
                throw .invalidArgument("unknown day '\(day)': use \(Self.dayNames.joined(separator: ", "))")
            }
            days.insert(index + 1)
        }
        self.days = days
        from = try Self.minutes(hours.from)
        to = try Self.minutes(hours.to)
        guard let zone = TimeZone(identifier: hours.timeZone) else {
            throw .invalidArgument("unknown time zone '\(hours.timeZone)': use a name such as Europe/Berlin or UTC")
        }
        var calendar = Calendar(identifier: .gregorian)
        calendar.timeZone = zone
        self.calendar = calendar
    }

    static func minutes(_ text: String) throws(VaultError) -> Int {
        let parts = text.split(separator: ":")
        guard parts.count == 2, let h = Int(parts[0]), let m = Int(parts[1]), (0...24).contains(h),
            (0...59).contains(m), h * 60 + m <= 24 * 60
        else { throw .invalidArgument("invalid time '\(text)': use HH:MM, e.g. 07:30") }
        return h * 60 + m
    }

    func contains(_ date: Date) -> Bool {
        let c = calendar.dateComponents([.weekday, .hour, .minute], from: date)
        let day = c.weekday!
        let minute = c.hour! * 60 + c.minute!
        if from <= to { return days.contains(day) && minute >= from && minute < to }
        // Spans midnight: the evening of a listed day, or the small hours after one.
        return (days.contains(day) && minute >= from) || (days.contains(day == 1 ? 7 : day - 1) && minute < to)
    }
}

/// Watches what callers do for the patterns in `AlertConfiguration`; says what to raise. Each
/// pattern is raised once per caller and window (an hour for access outside hours), not per request.
final class TheftDetector: Sendable {
    struct Finding: Sendable, Equatable {
        var kind: String
        var detail: String
    }

    struct Totals {
        var window: Int
        var models: Int
        var versions: Int
        var bytes: UInt64
    }

    struct Usage {
        var window = Int.min
        var models = Set<String>()
        var versions = Set<String>()
        var bytes: UInt64 = 0
        var raised = Set<String>()
        var history: [Totals] = []
    }

    struct State {
        var usage: [String: Usage] = [:]
        var offHoursRaised: [String: Int] = [:]
        /// Token id and network pairs already on record (or being recorded).
        var networks = Set<String>()
    }

    let configuration: AlertConfiguration
    let schedules: [Schedule]
    let state = Mutex(State())

    init(_ configuration: AlertConfiguration) throws {
        self.configuration = configuration
        schedules = try configuration.hours.map { try Schedule($0) }
    }

    /// Who pulls: an API token is watched apart from its owner's other use.
    static func actor(user: String?, tokenID: String?) -> String {
        if let tokenID { return "token \(tokenID) of \(user ?? "?")" }
        return "user \(user ?? "?")"
    }

    /// One download by `actor` (`token ID` or `user NAME`); what it raises, if anything.
    func download(actor: String, model: String, version: Int, bytes: UInt64, at date: Date) -> [Finding] {
        let bulk = configuration.bulk
        let window = Int(date.timeIntervalSince1970) / bulk.windowSeconds
        return state.withLock { s in
            var u = s.usage[actor] ?? Usage()
            if u.window != window {
                if u.window != .min {
                    u.history.append(
                        Totals(window: u.window, models: u.models.count, versions: u.versions.count, bytes: u.bytes))
                }
                u.history.removeAll { $0.window < window - bulk.baselineWindows }
                u = Usage(window: window, history: u.history)
            }
            u.models.insert(model)
            u.versions.insert("\(model)@\(version)")
            u.bytes += bytes
            let checks: [(String, Double, Double?, (Totals) -> Double)] = [
                ("models", Double(u.models.count), bulk.maxModels.map(Double.init), { Double($0.models) }),
                ("versions", Double(u.versions.count), bulk.maxVersions.map(Double.init), { Double($0.versions) }),
                ("bytes", Double(u.bytes), bulk.maxBytes.map(Double.init), { Double($0.bytes) }),
            ]
            var findings: [Finding] = []
            for (what, value, limit, past) in checks {
                guard let limit, value > limit, !u.raised.contains(what) else { continue }
                let baseline = u.history.isEmpty ? 0 : u.history.map(past).reduce(0, +) / Double(u.history.count)
                guard value > baseline * bulk.baselineFactor else { continue }
                u.raised.insert(what)
                let amount = what == "bytes" ? "\(UInt64(value)) bytes" : "\(Int(value)) distinct \(what)"
                findings.append(
                    Finding(
                        kind: "bulk-exfiltration",
                        detail:
                            "\(actor) pulled \(amount) within \(bulk.windowSeconds) s (limit \(UInt64(limit)), "
                            + "its usual \(String(format: "%.1f", baseline)))"))
            }
            s.usage[actor] = u
            return findings
        }
    }

    /// Access by `user` (holding `roles`) at `date`, if that lies outside every schedule of its roles.
    func outsideHours(user: String, roles: [String], at date: Date) -> Finding? {
        let applying = schedules.filter { !$0.roles.isDisjoint(with: roles) }
        guard !applying.isEmpty, !applying.contains(where: { $0.contains(date) }) else { return nil }
        let hour = Int(date.timeIntervalSince1970) / 3600
        let first = state.withLock { s in
            defer { s.offHoursRaised[user] = hour }
            return s.offHoursRaised[user] != hour
        }
        guard first else { return nil }
        let held = roles.filter { role in applying.contains { $0.roles.contains(role) } }
        return Finding(
            kind: "off-hours",
            detail:
                "\(user) (role \(held.sorted().joined(separator: ", "))) made a request outside its configured hours")
    }

    /// Whether token `id`'s use from `network` must be checked against the record: true once per
    /// pair and process; `forget` undoes it when the check could not be made.
    func unseen(token id: String, network: String) -> Bool {
        configuration.newTokenNetworks && state.withLock { $0.networks.insert(id + " " + network).inserted }
    }

    func forget(token id: String, network: String) {
        _ = state.withLock { $0.networks.remove(id + " " + network) }
    }
}
