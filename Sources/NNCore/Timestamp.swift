#if canImport(Glibc)
import Glibc
#endif

/// Wall-clock helpers that need no Foundation (the CLIs start faster without it).
public enum Clock {
    /// The current UTC time as ISO 8601, e.g. "2026-11-24T01:30:00Z"; or, when the environment
    /// sets `SOURCE_DATE_EPOCH` (seconds since 1970, the reproducible-builds convention), that
    /// time, so that converting the same file twice gives the same bytes.
    public static func nowISO8601() -> String {
        var t = time(nil)
        if let text = getenv("SOURCE_DATE_EPOCH").map({ String(cString: $0) }), let seconds = Int(text), seconds >= 0 {
            t = time_t(seconds)
        }
        var parts = tm()
        gmtime_r(&t, &parts)
        var buffer = [CChar](repeating: 0, count: 32)
        let n = strftime(&buffer, buffer.count, "%Y-%m-%dT%H:%M:%SZ", &parts)
        return String(decoding: buffer[0..<n].map { UInt8(bitPattern: $0) }, as: UTF8.self)
    }

    /// Seconds from an arbitrary fixed point, for measuring durations.
    public static func monotonicSeconds() -> Double {
        var ts = timespec()
        clock_gettime(CLOCK_MONOTONIC, &ts)
        return Double(ts.tv_sec) + Double(ts.tv_nsec) * 1e-9
    }
}

/// The project's version, recorded in files it writes.
public enum ProjectVersion {
    public static let string = "0.1.0"
}
