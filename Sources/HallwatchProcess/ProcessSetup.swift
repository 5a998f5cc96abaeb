import Foundation
import HallwatchConfig
import HallwatchCore
import Logging
import ServiceLifecycle

/// What every Hallwatch process does first: log to stderr (journald adds time and unit), and load the
/// configuration or exit with its diagnostics.
public enum ProcessSetup {
    /// Unblocks the signals a parent may have left blocked (a test runner does; children of Foundation's
    /// `Process` inherit the mask), so SIGTERM and SIGINT reach graceful shutdown.
    public static func unblockSignals() {
        var set = sigset_t()
        sigemptyset(&set)
        for s in [SIGTERM, SIGINT, SIGHUP, SIGQUIT] { sigaddset(&set, s) }
        pthread_sigmask(SIG_UNBLOCK, &set, nil)
    }

    /// Installs swift-log's stderr handler at `level` (from `HALLWATCH_LOG_LEVEL` when set).
    public static func bootstrapLogging(default level: Logger.Level = .info) {
        unblockSignals()
        let env = ProcessInfo.processInfo.environment["HALLWATCH_LOG_LEVEL"].flatMap(Logger.Level.init(rawValue:))
        LoggingSystem.bootstrap { label in
            var h = StreamLogHandler.standardError(label: label)
            h.logLevel = env ?? level
            return h
        }
    }

    /// Loads the configuration; on failure prints every diagnostic (`file:line: message`) and exits 78
    /// (`EX_CONFIG`), so systemd does not restart a process into the same error forever.
    public static func loadConfig(_ path: String, logger: Logger) -> HallwatchConfig {
        do {
            return try ConfigLoader.load(path: path)
        } catch let e as ConfigError {
            // Plain `file:line: message` lines, as compilers print them, so editors can jump to them.
            FileHandle.standardError.write(
                Data(("\(e.code): the configuration was refused\n" + e.diagnostics.map { "\($0)\n" }.joined()).utf8))
            exit(ExitStatus.config)
        } catch {
            logger.critical("cannot load the configuration: \(error)")
            exit(ExitStatus.config)
        }
    }
}

extension ProcessSetup {
    /// Runs a long-lived process's one service until SIGTERM or SIGINT (or until it returns or fails,
    /// which also ends the group gracefully), then says goodbye on the bus (``Presence/leave()``), also
    /// after a failure, so the process's state is `down` rather than left to the last-will.
    ///
    /// With `ready`, sends `READY=1` and that status line to systemd as the service starts and keeps its
    /// watchdog fed by ``ServiceNotifier/heartbeat(isProgressing:)`` (sd_notify(3)); without it the service
    /// notifies by itself (the recorder: after it listens, from its fsync loop). `STOPPING=1` on the way out.
    /// - Throws: what the service threw (callers exit 70).
    public static func runUntilSignalled(
        _ service: some Service, presence: Presence, logger: Logger, ready: String? = nil
    ) async throws {
        let notifier = ServiceNotifier.shared
        var heartbeat: Task<Void, Never>?
        if let ready {
            notifier.ready(status: ready)
            heartbeat = Task { await notifier.heartbeat() }
        }
        defer {
            heartbeat?.cancel()
            notifier.stopping()
        }
        let group = ServiceGroup(
            configuration: .init(
                services: [
                    .init(
                        service: service, successTerminationBehavior: .gracefullyShutdownGroup,
                        failureTerminationBehavior: .gracefullyShutdownGroup)
                ],
                gracefulShutdownSignals: [.sigterm, .sigint], logger: logger))
        do { try await group.run() } catch {
            await presence.leave()
            throw error
        }
        await presence.leave()
    }
}
