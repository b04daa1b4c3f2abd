import Foundation
import Synchronization

/// Brute-force defence for logins: per account and per source IP, a few free failures, then an
/// exponentially growing lockout (by default 1 s, 2 s, 4 s … up to 15 minutes) answered with 429.
final class LoginThrottle: Sendable {
    struct Entry {
        var failures = 0
        var lockedUntil: Date?
    }

    let freeFailuresPerAccount = 5
    let freeFailuresPerIP = 20
    let maximumLockout: TimeInterval = 900
    let firstLockout: TimeInterval
    let entries = Mutex<[String: Entry]>([:])

    init(firstLockout: TimeInterval = 1) {
        self.firstLockout = firstLockout
    }

    /// Seconds the caller must wait, if the account or the address is locked out.
    func retryAfter(account: String, ip: String, now: Date = Date()) -> Int? {
        entries.withLock { entries in
            let waits = ["account:\(account)", "ip:\(ip)"].compactMap { entries[$0]?.lockedUntil }
                .map { $0.timeIntervalSince(now) }.filter { $0 > 0 }
            return waits.max().map { Int($0.rounded(.up)) }
        }
    }

    /// Counts a failure; returns the keys (`account:NAME`, `ip:ADDRESS`) whose lockout it starts.
    @discardableResult
    func recordFailure(account: String, ip: String, now: Date = Date()) -> [String] {
        entries.withLock { entries in
            var started: [String] = []
            for (key, free) in [("account:\(account)", freeFailuresPerAccount), ("ip:\(ip)", freeFailuresPerIP)] {
                var entry = entries[key] ?? Entry()
                entry.failures += 1
                if entry.failures == free { started.append(key) }
                if entry.failures >= free {
                    let exponent = Double(min(entry.failures - free, 20))
                    entry.lockedUntil = now.addingTimeInterval(min(firstLockout * pow(2, exponent), maximumLockout))
                }
                entries[key] = entry
            }
            return started
        }
    }

    /// A successful login clears the account's failures (not the address's).
    func recordSuccess(account: String) {
        _ = entries.withLock { $0.removeValue(forKey: "account:\(account)") }
    }
}
