#if canImport(Glibc)
    import Glibc
#endif

/// The process's open-file limit (RLIMIT_NOFILE).
public enum FileDescriptorLimit {
    /// Raises the soft limit to the hard limit, as Go's runtime does at start: the default
    /// soft limit (1024, or 256 on some systems) is a relic of `select(2)`, which clickd
    /// does not use. Returns the soft limit in force afterwards.
    @discardableResult
    public static func raiseToHard() -> Int {
        var limit = rlimit()
        guard getrlimit(Int32(RLIMIT_NOFILE.rawValue), &limit) == 0 else { return 1024 }
        if limit.rlim_cur < limit.rlim_max {
            var raised = limit
            raised.rlim_cur = limit.rlim_max
            if setrlimit(Int32(RLIMIT_NOFILE.rawValue), &raised) == 0 { limit = raised }
        }
        return limit.rlim_cur >= rlim_t(Int.max) ? Int.max : Int(limit.rlim_cur)
    }

    /// The connection cap a descriptor limit allows: a reserve (a quarter of the limit, at
    /// least 64 and at most 256) stays for the log's files, the event loops, the admin
    /// listener and its clients — an idle edge holds 28 descriptors, so a smaller reserve
    /// let accepts fail with EMFILE before the cap was reached.
    public static func connectionCap(requested: Int, descriptorLimit: Int) -> Int {
        let reserve = min(256, max(64, descriptorLimit / 4))
        return max(1, min(requested, descriptorLimit - reserve))
    }
}
