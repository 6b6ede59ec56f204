import ClickdTestSupport
import Foundation
import LogArchive
import Testing

/// The archive command's template and its runner, against real shells.
@Suite struct ShellCommandTests {
    @Test func templatesExpandAsPostgreSQLsDo() throws {
        let template = try CommandTemplate("cp %p /a/%l/%f.tmp && echo 100%% %f", placeholders: ["p", "f", "l"])
        #expect(
            template.expand(["p": "/log/0001.seg", "f": "0001.seg", "l": "abc"])
                == "cp /log/0001.seg /a/abc/0001.seg.tmp && echo 100% 0001.seg")
        for bad in ["cp %p %x", "cp %p 5%", "   ", "cp %P x"] {
            #expect(throws: CommandTemplateError.self, "\(bad)") { try CommandTemplate(bad, placeholders: ["p", "f", "l"]) }
        }
        do {
            _ = try CommandTemplate("cp %p %r", placeholders: ["p", "f"])
        } catch {
            #expect(error.description.contains("'%r'") && error.description.contains("%f"), "\(error)")
        }
    }

    @Test func exitStatusAndOutputAreReported() async throws {
        let ok = try await ShellCommand.run("echo copied; echo warn >&2", timeout: .seconds(30))
        #expect(ok.succeeded)
        #expect(ok.output == "copied\nwarn")
        let failed = try await ShellCommand.run("echo 'no such bucket' >&2; exit 3", timeout: .seconds(30))
        #expect(failed.status == .exited(3))
        #expect(failed.output == "no such bucket")
        #expect(failed.statusText == "exit status 3")
        // Only the last 4 KiB of a chatty command is kept.
        let chatty = try await ShellCommand.run("i=0; while [ $i -lt 2000 ]; do echo line $i; i=$((i+1)); done; exit 1", timeout: .seconds(30))
        #expect(chatty.output.hasSuffix("line 1999") && chatty.output.hasPrefix("…"))
        #expect(chatty.output.utf8.count <= ShellCommand.outputLimit + 3)
    }

    /// A command past its timeout is stopped with its whole process group — also a child
    /// that ignores SIGTERM — and a background child holding its output open does not
    /// make the runner wait.
    @Test func hungCommandsAreStoppedWithTheirGroup() async throws {
        let dir = try TemporaryDirectory()
        defer { dir.remove() }
        let pidFile = dir.appending("child.pid")
        let start = ContinuousClock.now
        let hung = try await ShellCommand.run(
            "sh -c 'trap \"\" TERM; echo $$ > \(pidFile); while :; do sleep 1; done' & wait", timeout: .milliseconds(500),
            killAfter: .milliseconds(500))
        let took = ContinuousClock.now - start
        #expect(hung.status == .timedOut(.milliseconds(500)))
        // Bounded, not fast: the command alone would run forever (a loaded machine running
        // the whole suite has taken 13 s to schedule the half-second timeout and teardown).
        #expect(took < .seconds(60), "took \(took)")
        let pid = try #require(Int32(String(contentsOfFile: pidFile, encoding: .utf8).trimmingCharacters(in: .whitespacesAndNewlines)))
        // Reaped by init once killed; give the kernel a moment.
        let deadline = ContinuousClock.now + .seconds(5)
        while kill(pid, 0) == 0 && ContinuousClock.now < deadline { try await Task.sleep(for: .milliseconds(20)) }
        #expect(kill(pid, 0) != 0, "the child that ignored SIGTERM is still alive")

        let background = ContinuousClock.now
        let detached = try await ShellCommand.run("sleep 5 & echo started", timeout: .seconds(30))
        #expect(detached.succeeded && detached.output == "started")
        #expect(ContinuousClock.now - background < .seconds(3))
    }
}
