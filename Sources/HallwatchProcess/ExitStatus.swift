/// The exit statuses of Hallwatch's executables, in one place so units, scripts and tests can rely on them.
/// Where one fits, the value is the BSD `sysexits.h` one, which systemd and shell scripts understand
/// (systemd's `RestartPreventExitStatus=78` keeps a process from restarting into the same configuration error).
public enum ExitStatus {
    /// A command found what it was asked to look for: an inconsistency (`check`), a refused hold, an export
    /// with nothing recorded.
    public static let failure: Int32 = 1
    /// `check`: a disk could not be checked at all.
    public static let unchecked: Int32 = 2
    /// A capture worker whose camera stream is not (or no longer) in the configuration: it has nothing to
    /// record. Its unit counts this as success and does not restart (`SuccessExitStatus=3`,
    /// `RestartPreventExitStatus=3`), so the instance of a removed camera ends stopped, not failed.
    public static let notConfigured: Int32 = 3
    /// `EX_USAGE`: a camera or option that the configuration does not know.
    public static let usage: Int32 = 64
    /// `EX_NOINPUT`: an input file or a named device that does not exist.
    public static let noInput: Int32 = 66
    /// `EX_UNAVAILABLE`: the bus (mosquitto) cannot be reached.
    public static let unavailable: Int32 = 69
    /// `EX_SOFTWARE`: a long-running service failed (systemd restarts it).
    public static let software: Int32 = 70
    /// `EX_TEMPFAIL`: another supervisor already runs in this directory.
    public static let tempFail: Int32 = 75
    /// `EX_CONFIG`: the configuration was refused (every diagnostic printed).
    public static let config: Int32 = 78
}
