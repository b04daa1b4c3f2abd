import Foundation
import Synchronization

/// A token bucket per key: `burst` requests at once, refilled at `perSecond`.
final class RateLimiter: Sendable {
    struct Bucket {
        var tokens: Double
        var updated: Date
    }

    let perSecond: Double
    let burst: Double
    let buckets = Mutex<[String: Bucket]>([:])

    init(perSecond: Double, burst: Int) {
        self.perSecond = perSecond
        self.burst = Double(burst)
    }

    /// Takes one token for `key`.
    /// - Returns: nil when allowed, else the seconds until a token is available.
    func take(_ key: String, now: Date = Date()) -> Int? {
        take(key, perSecond: perSecond, burst: burst, now: now)
    }

    /// Takes one token for `key` from a bucket with its own rate (an API token's limit).
    func take(_ key: String, perSecond: Double, burst: Double, now: Date = Date()) -> Int? {
        buckets.withLock { buckets in
            var bucket = buckets[key] ?? Bucket(tokens: burst, updated: now)
            bucket.tokens = min(burst, bucket.tokens + now.timeIntervalSince(bucket.updated) * perSecond)
            bucket.updated = now
            defer {
                buckets[key] = bucket
                if buckets.count > 100_000 { buckets.removeAll() }
            }
            guard bucket.tokens >= 1 else { return Self.retryAfter((1 - bucket.tokens) / perSecond) }
            bucket.tokens -= 1
            return nil
        }
    }

    /// Whole seconds to wait, from 1 to a day: a rate stored before rates were bounded (or one
    /// configured near zero) would otherwise make a wait no `Int` holds.
    static func retryAfter(_ seconds: Double) -> Int {
        guard seconds.isFinite, seconds < 86_400 else { return 86_400 }
        return max(1, Int(seconds.rounded(.up)))
    }
}
