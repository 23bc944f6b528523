import Foundation
import Testing

/// The README's digit walk-through, run as written (the `make release` line aside: the tests use
/// the binaries they were built with), from the package root.
@Suite struct ReadmeWalkthrough {
    @Test func digitModelFromMNISTClassifiesAPhoto() async throws {
        let readme = try String(contentsOfFile: "\(packageRoot)/README.md", encoding: .utf8)
        let marker = try #require(readme.range(of: "<!-- digit-walkthrough"))
        let rest = readme[marker.upperBound...]
        let open = try #require(rest.range(of: "```sh\n"))
        let close = try #require(rest[open.upperBound...].range(of: "```"))
        let block = rest[open.upperBound..<close.lowerBound]
            .replacingOccurrences(of: ".build/release/", with: "\(productsDirectory)/")
            .split(separator: "\n", omittingEmptySubsequences: false)
            .filter { !$0.hasPrefix("make ") }
            .joined(separator: "\n")
        try? FileManager.default.removeItem(atPath: "\(packageRoot)/out/digits")
        let result = try await run("/bin/bash", ["-e", "-c", "cd '\(packageRoot)'\n" + block])
        #expect(result.status == 0, "\(result.stderr)")
        let lines = result.stdout.split(separator: "\n")
        // What the README says it prints: the accuracy, and the photo's class and probabilities.
        #expect(lines.contains("final test accuracy 94.95 %"), "\(result.stdout)")
        #expect(lines.contains { $0.hasSuffix("img_077.jpg  2 0.9509 | 4 0.0267 | 6 0.0117") }, "\(result.stdout)")
        #expect(FileManager.default.fileExists(atPath: "\(packageRoot)/out/digits/seen/img_077.png"))
    }
}
