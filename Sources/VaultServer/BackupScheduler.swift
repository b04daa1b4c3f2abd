import AuditLog
import Backup
import Foundation
import Logging
import ServiceLifecycle
import Storage
import VaultServices

/// Takes a snapshot every `schedule.everySeconds` while the vault is unsealed, then applies the
/// retention policy. Each outcome goes to `run/backup-status.json` (`mvault status`), `/metrics`
/// and the log; a failure also raises an alert.
struct BackupScheduler: Service {
    let schedule: ServerConfiguration.BackupSchedule
    let destination: String
    let source: BackupSource
    let keys: KeyHolder
    let audit: AuditTrail
    let metrics: VaultMetrics
    let logger: Logger

    func run() async throws {
        while !Task.isCancelled {
            do {
                try await cancelWhenGracefulShutdown { try await Task.sleep(for: .seconds(schedule.everySeconds)) }
            } catch {
                return
            }
            guard !keys.status().sealed else { continue }
            await offTheLoops { await backUp() }
        }
    }

    func backUp() async {
        let started = Date()
        do {
            let target = try backupDestination(
                destination, environment: ProcessInfo.processInfo.environment, create: true)
            let report = try await Backups.create(source, to: target)
            let key = try CheckpointVerifier(encoded: keys.backupVerifier())
            let (forgotten, objects) = try await Backups.forget(target, key: key, retention: schedule.keep)
            BackupStatus.record(source.layout, destination: target.name, snapshot: report.manifest.snapshot, error: nil)
            metrics.backup(succeededAt: Date(), seconds: Date().timeIntervalSince(started))
            logger.info(
                "backup \(report.manifest.snapshot) to \(target.name): \(report.copied) objects copied, \(report.reused) reused; retention removed \(forgotten.count) snapshot(s), \(objects) object(s)"
            )
        } catch {
            BackupStatus.record(source.layout, destination: destination, snapshot: nil, error: "\(error)")
            metrics.backupFailed()
            logger.error("backup to \(destination) failed: \(error)")
            audit.alert("backup-failed", "the scheduled backup to \(destination) failed: \(error)")
        }
    }
}
