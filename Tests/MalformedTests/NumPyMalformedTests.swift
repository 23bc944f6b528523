import NNCompression
import NNCore
import NNConvert
import NNModelFiles
import NNZip
import NNNumPy
import Testing

/// A `.npy` image: magic, version, header length (2 bytes in 1.0, 4 in 2.0 and 3.0), the header
/// text, then `data`.
func npyBytes(major: UInt8 = 1, minor: UInt8 = 0, header: String, data: [UInt8] = [], headerLength: Int? = nil) -> [UInt8] {
    var out: [UInt8] = [0x93, 0x4E, 0x55, 0x4D, 0x50, 0x59, major, minor]
    let text = Array(header.utf8)
    if major == 1 { out.le(UInt16(headerLength ?? text.count)) } else { out.le(UInt32(headerLength ?? text.count)) }
    return out + text + data
}

/// The header literal NumPy writes.
func npyHeader(_ descr: String = "<f4", fortran: String = "False", shape: String) -> String {
    "{'descr': '\(descr)', 'fortran_order': \(fortran), 'shape': \(shape), }\n"
}

/// A 3x4 f32 array, 48 bytes of data after a header of `npyHeader(shape: "(3, 4)")`.
let npyMatrix = npyBytes(header: npyHeader(shape: "(3, 4)"), data: (0..<48).map { UInt8($0) })
let npyMatrixHeaderEnd = npyMatrix.count - 48

let npyCases: [MalformedCase] = {
    let p = "a.npy: "
    let bad = p + "malformed .npy header: "
    func at(_ reason: String, _ header: String, _ fragment: String) -> String {
        // Positions are byte offsets in the header text of the first byte of `fragment`.
        let position = header.utf8.count - header[header.range(of: fragment)!.lowerBound...].utf8.count
        return bad + reason + " at byte \(position) of the header"
    }
    var cases: [MalformedCase] = [
        MalformedCase("empty", [], p + "not a NumPy .npy array (it does not start with the magic string \\x93NUMPY)"),
        MalformedCase("five bytes of magic", [0x93, 0x4E, 0x55, 0x4D, 0x50], p + "not a NumPy .npy array (it does not start with the magic string \\x93NUMPY)"),
        MalformedCase("an .npz given as .npy", [0x50, 0x4B, 0x03, 0x04, 0, 0, 0, 0, 0, 0],
                      p + "not a NumPy .npy array (it does not start with the magic string \\x93NUMPY)"),
        MalformedCase("magic only", Array(npyMatrix[0..<6]), p + "truncated .npy header: it needs 10 bytes but there are only 6"),
        MalformedCase("no header length", Array(npyMatrix[0..<8]), p + "truncated .npy header: it needs 10 bytes but there are only 8"),
        MalformedCase("version 2.0, half the header length", Array(npyBytes(major: 2, header: "{}")[0..<10]),
                      p + "truncated .npy header: it needs 12 bytes but there are only 10"),
        MalformedCase("inside the header", Array(npyMatrix[0..<20]),
                      p + "truncated .npy header: it needs \(npyMatrixHeaderEnd) bytes but there are only 20"),
        MalformedCase("version 4.0", npyBytes(major: 4, header: "{}"), p + "unsupported .npy format version 4.0 (1.0, 2.0 and 3.0 are supported)"),
        MalformedCase("version 1.1", npyBytes(minor: 1, header: "{}"), p + "unsupported .npy format version 1.1 (1.0, 2.0 and 3.0 are supported)"),
        MalformedCase("version 0.0", npyBytes(major: 0, header: "{}"), p + "unsupported .npy format version 0.0 (1.0, 2.0 and 3.0 are supported)"),
        MalformedCase("header length past the end", npyBytes(header: "{}", headerLength: 100),
                      p + "truncated .npy header: it needs 110 bytes but there are only 12"),
        MalformedCase("header length 2^32-1", npyBytes(major: 2, header: "{}", headerLength: Int(UInt32.max)),
                      p + "the .npy header is 4294967295 bytes long, more than the limit of 10000"),
        MalformedCase("header over NumPy's limit", npyBytes(header: npyHeader(shape: "()") + String(repeating: " ", count: 10_000)),
                      p + "the .npy header is \(npyHeader(shape: "()").utf8.count + 10_000) bytes long, more than the limit of 10000"),
        MalformedCase("a list", npyBytes(header: "[1, 2]"), bad + "the header is not a dictionary"),
        MalformedCase("shape missing", npyBytes(header: "{'descr': '<f4', 'fortran_order': False}"), bad + "the key 'shape' is missing"),
        MalformedCase("descr twice", npyBytes(header: "{'descr': '<f4', 'descr': '<f8', 'fortran_order': False, 'shape': ()}"),
                      bad + "the key 'descr' appears twice"),
        MalformedCase("an extra key", npyBytes(header: "{'descr': '<f4', 'fortran_order': False, 'shape': (), 'extra': 1}"),
                      bad + "unexpected key 'extra'"),
        MalformedCase("descr a number", npyBytes(header: "{'descr': 5, 'fortran_order': False, 'shape': ()}"), bad + "'descr' is not a string"),
        MalformedCase("structured dtype", npyBytes(header: "{'descr': [('x', '<f4')], 'fortran_order': False, 'shape': ()}"),
                      p + "structured (record) dtypes are not supported"),
        MalformedCase("fortran_order a string", npyBytes(header: "{'descr': '<f4', 'fortran_order': 'yes', 'shape': ()}"),
                      bad + "'fortran_order' is not True or False"),
        MalformedCase("shape a list", npyBytes(header: npyHeader(shape: "[2, 3]")), bad + "'shape' is not a tuple (a one-element tuple needs a trailing comma)"),
        MalformedCase("shape (3) without a comma", npyBytes(header: npyHeader(shape: "(3)")), bad + "'shape' is not a tuple (a one-element tuple needs a trailing comma)"),
        MalformedCase("negative dimension", npyBytes(header: npyHeader(shape: "(-1,)")), bad + "'shape' has the negative dimension -1"),
        MalformedCase("dimension over 2^63", npyBytes(header: npyHeader(shape: "(99999999999999999999,)")),
                      bad + "the dimension 99999999999999999999 in 'shape' is too large"),
        MalformedCase("rank 65", npyBytes(header: npyHeader(shape: "(" + String(repeating: "1, ", count: 65) + ")")),
                      bad + "'shape' has 65 dimensions, more than NumPy's 64"),
        MalformedCase("dimension a string", npyBytes(header: npyHeader(shape: "('a',)")), bad + "'shape' holds something other than integers"),
        MalformedCase("shape of dimensions that overflow", npyBytes(header: npyHeader("<f8", shape: "(1099511627776, 1099511627776)")),
                      p + "the shape (1099511627776, 1099511627776) with dtype '<f8' is too large to address"),
        MalformedCase("pickled objects", npyBytes(header: npyHeader("|O", shape: "(2,)"), data: [UInt8](repeating: 0, count: 16)),
                      p + "refusing to read pickled object arrays (dtype '|O'): they can run code"),
        MalformedCase("complex", npyBytes(header: npyHeader("<c16", shape: "(1,)"), data: [UInt8](repeating: 0, count: 16)),
                      p + "unsupported dtype '<c16'"),
        MalformedCase("datetime", npyBytes(header: npyHeader("<M8[ns]", shape: "(1,)")), p + "unsupported dtype '<M8[ns]'"),
        MalformedCase("three-byte floats", npyBytes(header: npyHeader("<f3", shape: "(1,)")), p + "unsupported dtype '<f3'"),
        MalformedCase("byte order only", npyBytes(header: npyHeader("<", shape: "(1,)")), p + "unsupported dtype '<'"),
        MalformedCase("unicode array of rank 1", npyBytes(header: npyHeader("<U3", shape: "(2,)"), data: [UInt8](repeating: 0x41, count: 24)),
                      p + "unsupported dtype '<U3': string arrays are only read as 0-d scalars (shape ())"),
        MalformedCase("a surrogate in a unicode scalar", npyBytes(header: npyHeader("<U1", shape: "()"), data: [0x00, 0xD8, 0, 0]),
                      p + "the '<U1' array holds a value that is not a Unicode character"),
        MalformedCase("u8 above Int64.max", npyBytes(header: npyHeader("<u8", shape: "(2,)"), data: [1, 0, 0, 0, 0, 0, 0, 0] + [0, 0, 0, 0, 0, 0, 0, 0x80]),
                      p + "element 1 of the '<u8' array is larger than 9223372036854775807 and does not fit in i64"),
        MalformedCase("trailing bytes", npyMatrix + [1, 2, 3], p + "3 unexpected bytes follow the 48 bytes of array data"),
    ]
    for cut in [0, 1, 2, 24, 47] {
        cases.append(MalformedCase("data cut after \(cut) bytes", Array(npyMatrix[0..<(npyMatrixHeaderEnd + cut)]),
                                   p + "truncated array data: shape (3, 4) of '<f4' needs 48 bytes but only \(cut) follow the header"))
    }
    let escaped = npyHeader("<f\\x34", shape: "()")
    let float = npyHeader(shape: "(2.5,)")
    let deepPrefix = "{'descr': '<f4', 'fortran_order': False, 'shape': "
    let deep = deepPrefix + String(repeating: "(", count: 17) + String(repeating: ")", count: 17) + "}"
    let misspelled = "{'descr': '<f4', 'fortran_order': Fals, 'shape': ()}"
    let after = npyHeader(shape: "()") + "x"
    let unterminated = "{'descr': '<f4"
    cases += [
        MalformedCase("an escape in a string", npyBytes(header: escaped), at("escape sequences in strings are not supported", escaped, "\\")),
        MalformedCase("a fractional dimension", npyBytes(header: float), at("only plain integers are allowed here", float, ".5")),
        // The dictionary is the first level, so the 16th parenthesis is one too many.
        MalformedCase("17 nested levels", npyBytes(header: deep), bad + "nesting is too deep at byte \(deepPrefix.utf8.count + 15) of the header"),
        MalformedCase("a misspelled False", npyBytes(header: misspelled), at("unexpected name 'Fals'", misspelled, "Fals")),
        MalformedCase("text after the dictionary", npyBytes(header: after), at("unexpected text after the dictionary", after, "x")),
        MalformedCase("an unterminated string", npyBytes(header: unterminated), bad + "unterminated string at byte \(unterminated.utf8.count) of the header"),
        MalformedCase("version 3.0 with invalid UTF-8", npyBytes(major: 3, header: "{'descr': '<f4', 'fortran_order': False, 'shape': ()}")
                        .enumerated().map { $0.offset == 12 + 11 ? 0xFF : $0.element },
                      bad + "a string is not valid UTF-8 at byte 15 of the header"),
    ]
    return cases
}()

@Suite struct NumPyMalformed {
    @Test(arguments: npyCases) func npy(_ c: MalformedCase) {
        expectMessage(c.message) { _ = try NumPyFile.decode(c.bytes, name: "a.npy") }
    }

    /// The same damage read from a file (`NumPyFile.read(path:)` reads with `pread`).
    @Test func fromAFile() {
        let dir = ScratchDirectory()
        let path = dir.write(Array(npyMatrix.dropLast(5)), to: "cut.npy")
        expectMessage("cut.npy: truncated array data: shape (3, 4) of '<f4' needs 48 bytes but only 43 follow the header") {
            _ = try NumPyFile.read(path: path, displayName: "cut.npy")
        }
    }

    @Test func arraysOverTheCallersLimit() {
        expectMessage("a.npy: the array is 48 bytes, more than the limit of 16 bytes") {
            _ = try NumPyFile.decode(npyMatrix, name: "a.npy", limits: NumPyLimits(maxArrayBytes: 16))
        }
    }

    @Test func theValidMatrixReads() throws {
        #expect(try NumPyFile.decode(npyMatrix, name: "a.npy").shape == [3, 4])
    }
}
