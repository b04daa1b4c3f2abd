import Foundation
import Prometheus
import Synchronization

/// The server's Prometheus metrics, served at `/metrics` (text exposition format 0.0.4) to
/// callers with the `audit` capability. Counters move as things happen; the gauges (seal state,
/// audit log, sinks) are read when scraped. Each server has its own registry.
final class VaultMetrics: Sendable {
    let registry = PrometheusCollectorRegistry()

    /// The counters of one route's answered requests, by route template (not the path: model
    /// names stay out of labels here) and status. Each is made once and kept: asking the registry
    /// for a counter by its labels takes a lock and hashes every label.
    func counters(method: String, route: String) -> RouteCounters {
        RouteCounters(metrics: self, method: method, route: route)
    }

    final class RouteCounters: Sendable {
        let metrics: VaultMetrics
        let method: String
        let route: String
        let byStatus = Mutex<[Int: Counter]>([:])

        init(metrics: VaultMetrics, method: String, route: String) {
            (self.metrics, self.method, self.route) = (metrics, method, route)
        }

        func answered(status: Int) {
            let counter = byStatus.withLock { made in
                if let counter = made[status] { return counter }
                let counter = metrics.registry.makeCounter(
                    name: "mvault_http_requests_total",
                    labels: [("method", method), ("route", route), ("status", String(status))],
                    help: "HTTP requests answered, by route template and status")
                made[status] = counter
                return counter
            }
            counter.increment()
            if status == 401 {
                metrics.registry.makeCounter(
                    name: "mvault_auth_failures_total", labels: [("route", route)],
                    help: "requests refused for a missing, wrong or expired credential (password, TOTP code, token)"
                ).increment()
            }
        }
    }

    /// A download starting (`bytes`: what it will send), by model.
    func download(model: String, bytes: UInt64) {
        registry.makeCounter(
            name: "mvault_downloads_total", labels: [("model", model)], help: "file downloads started, by model"
        ).increment()
        registry.makeCounter(
            name: "mvault_download_bytes_total", labels: [("model", model)],
            help: "bytes of file downloads started, by model"
        ).increment(by: Int64(clamping: bytes))
    }

    func alert(kind: String) {
        registry.makeCounter(name: "mvault_alerts_total", labels: [("kind", kind)], help: "alerts raised, by kind")
            .increment()
    }

    func backup(succeededAt date: Date, seconds: Double) {
        gauge(
            "mvault_backup_last_success_timestamp_seconds", "when the last scheduled backup succeeded (Unix time)",
            date.timeIntervalSince1970)
        gauge("mvault_backup_last_duration_seconds", "how long the last successful backup took", seconds)
    }

    func backupFailed() {
        registry.makeCounter(name: "mvault_backup_failures_total", help: "scheduled backups that failed").increment()
    }

    func gauge(_ name: String, _ help: String, _ value: Double, labels: [(String, String)] = []) {
        registry.makeGauge(name: name, labels: labels, help: help).set(value)
    }

    /// The exposition text, after reading the gauges from `api`.
    func scrape(_ api: VaultAPI) -> [UInt8] {
        gauge("mvault_sealed", "1 while the vault is sealed", api.keys.status().sealed ? 1 : 0)
        if let log = api.audit.log {
            gauge("mvault_audit_log_entries", "entries in the audit log", Double(log.size))
            gauge("mvault_audit_checkpoint_age_seconds", "seconds since the last signed checkpoint", log.checkpointAge)
        }
        for sink in api.audit.sinks {
            let (queued, dropped, delivered) = sink.counters
            let labels = [("sink", sink.name)]
            gauge(
                "mvault_audit_sink_queued_events", "events waiting for a sink (its lag)", Double(queued), labels: labels
            )
            gauge("mvault_audit_sink_dropped_events", "events a sink dropped", Double(dropped), labels: labels)
            gauge("mvault_audit_sink_delivered_events", "events a sink delivered", Double(delivered), labels: labels)
        }
        return registry.emitToBuffer()
    }
}
