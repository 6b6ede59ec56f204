import ServiceLifecycle

/// The click listener (`EdgeServer`, bound when the edge is built) as a `Service`: it answers
/// clicks until graceful shutdown, then stops accepting, answers every request already read
/// and returns once every connection has closed (`EdgeServer.shutdown`).
struct ClickListener: Service {
    let server: EdgeServer

    func run() async throws {
        // Cancellation (the group torn down after a failure) stops it the same way.
        try? await gracefulShutdown()
        await server.shutdown()
    }
}
