import FuzzSupport
import NNCompression
import NNData

// The IDX readers, plain and gzip. The first byte picks the path:
//   0  `IDXFile(bytes:name:)` on the rest (an uncompressed image in memory);
//   1  the rest is a gzip stream: `Inflate.decompress`, then `IDXFile(bytes:name:)`;
//   2  the rest is written to a file and read by `IDXFile(path:)` (gzip when it starts 1f 8b)
//      and streamed by `IDXImageStream`;
//   3  the rest is gzip-compressed by the harness first, then read as in 2, so mutations of
//      the IDX content reach the gzip paths.
// Reading is capped at 64 MiB of decompressed data (`maxBytes`).

let maxBytes = 64 << 20
let scratch = ScratchFile(name: "input.idx")

@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzIDX(_ data: UnsafePointer<UInt8>?, _ size: Int) -> CInt {
    guard let data, size > 0 else { return 0 }
    let rest = fuzzBytes(data, size, droppingFirst: 1)
    switch data[0] % 4 {
    case 0:
        use(try? IDXFile(bytes: rest, name: "fuzz.idx"))
    case 1:
        if let plain = try? Inflate.decompress(rest, format: .gzip, maxBytes: maxBytes, name: "fuzz.idx.gz") {
            use(try? IDXFile(bytes: plain, name: "fuzz.idx.gz"))
        }
    case 2:
        scratch.write(rest)
        readFile()
    default:
        guard let compressed = try? Deflate.compress(rest, format: .gzip, level: 1) else {
            fatalError("gzip compression failed")
        }
        scratch.write(compressed)
        readFile()
    }
    return 0
}

func readFile() {
    let whole = try? IDXFile(path: scratch.path, maxBytes: maxBytes, displayName: "fuzz.idx")
    use(whole)
    // The stream must agree with the whole-file reader: same images, and an error exactly when
    // the whole file is invalid (it reads until the end, where trailing bytes are found).
    var streamed: [Float] = []
    var streamError: (any Error)?
    do {
        let stream = try IDXImageStream(path: scratch.path, batchSize: 3, displayName: "fuzz.idx")
        while let batch = try stream.nextBatch() {
            precondition(batch.features.count == batch.count * batch.featureCount, "a batch has the wrong size")
            streamed += batch.features
        }
    } catch {
        streamError = error
    }
    if let whole, whole.header.dataByteCount <= maxBytes {
        let layout = IDXImageLayout(dims: whole.dims)
        if layout.featureCount == 0 && layout.imageCount > 0 {
            // Refused by design: images of 0 values.
            guard case .imagesWithoutValues? = streamError as? IDXError else {
                fatalError("IDXImageStream accepted images of 0 values: \(whole.dims)")
            }
            return
        }
        precondition(streamError == nil, "IDXImageStream rejects a file IDXFile reads: \(streamError!)")
        precondition(streamed.elementsEqual(whole.floats(), by: { $0.bitPattern == $1.bitPattern }),
                     "IDXImageStream and IDXFile read different values")
    }
}

func use(_ file: IDXFile?) {
    guard let file else { return }
    precondition(file.floats().count == file.elementCount, "floats() has the wrong count")
    precondition(file.doubles(scale: 0.5).count == file.elementCount, "doubles() has the wrong count")
    if file.elementType.isInteger {
        precondition((try? file.ints())?.count == file.elementCount, "ints() failed on an integer file")
    }
    switch file.elementType {
    case .u8: _ = try? file.values(as: UInt8.self)
    case .i8: _ = try? file.values(as: Int8.self)
    case .i16: _ = try? file.values(as: Int16.self)
    case .i32: _ = try? file.values(as: Int32.self)
    case .f32: _ = try? file.values(as: Float.self)
    case .f64: _ = try? file.values(as: Double.self)
    }
    let images = IDXImages(file)
    precondition(images.features.count == images.count * images.featureCount, "IDXImages has the wrong size")
    _ = try? IDXLabels(file)
}

@main enum Main {
    static func main() { FuzzMain.run(fuzzIDX) }
}
