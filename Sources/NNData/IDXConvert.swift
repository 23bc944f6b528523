internal import NNKernels

// Bulk conversion between IDX's big-endian bytes and native values.
//
// These are plain counted loops over raw pointers so the optimizer vectorizes them; a `.map` or a
// per-element protocol call is several times slower on a 7.8 MB file.

/// Decodes `count` elements of `type` at `src` into `dst`, multiplied by `scale` in `T`'s
/// precision (f64 data in f64, then rounded once to `T`). Public for readers of IDX data that
/// arrives some other way (`nn-infer`'s stream of records).
@_specialize(where T == Float)
@_specialize(where T == Double)
public func decodeReals<T: BinaryFloatingPoint>(_ src: UnsafeRawPointer, type: IDXElementType, count: Int, scale: T,
                                         into dst: UnsafeMutablePointer<T>) {
    switch type {
    case .u8:
        let s = src.assumingMemoryBound(to: UInt8.self)
        if T.self == Float.self {
            // Every IDX image file: our C on the CPU's widest vectors (the same values).
            nn_widen_u8(s, count, Float(scale), UnsafeMutableRawPointer(dst).assumingMemoryBound(to: Float.self))
        } else {
            for i in 0..<count { dst[i] = T(s[i]) * scale }
        }
    case .i8:
        let s = src.assumingMemoryBound(to: Int8.self)
        for i in 0..<count { dst[i] = T(s[i]) * scale }
    case .i16:
        for i in 0..<count {
            let v = Int16(bitPattern: UInt16(bigEndian: src.loadUnaligned(fromByteOffset: 2 * i, as: UInt16.self)))
            dst[i] = T(v) * scale
        }
    case .i32:
        for i in 0..<count {
            let v = Int32(bitPattern: UInt32(bigEndian: src.loadUnaligned(fromByteOffset: 4 * i, as: UInt32.self)))
            dst[i] = T(v) * scale
        }
    case .f32:
        for i in 0..<count {
            dst[i] = T(Float(bitPattern: UInt32(bigEndian: src.loadUnaligned(fromByteOffset: 4 * i, as: UInt32.self)))) * scale
        }
    case .f64:
        let s = Double(scale)
        for i in 0..<count {
            dst[i] = T(Double(bitPattern: UInt64(bigEndian: src.loadUnaligned(fromByteOffset: 8 * i, as: UInt64.self))) * s)
        }
    }
}

/// Decodes `count` integer elements of `type` at `src` into `dst`; `type` must be an integer type.
func decodeInts(_ src: UnsafeRawPointer, type: IDXElementType, count: Int, into dst: UnsafeMutablePointer<Int>) {
    switch type {
    case .u8:
        let s = src.assumingMemoryBound(to: UInt8.self)
        for i in 0..<count { dst[i] = Int(s[i]) }
    case .i8:
        let s = src.assumingMemoryBound(to: Int8.self)
        for i in 0..<count { dst[i] = Int(s[i]) }
    case .i16:
        for i in 0..<count {
            dst[i] = Int(Int16(bitPattern: UInt16(bigEndian: src.loadUnaligned(fromByteOffset: 2 * i, as: UInt16.self))))
        }
    case .i32:
        for i in 0..<count {
            dst[i] = Int(Int32(bitPattern: UInt32(bigEndian: src.loadUnaligned(fromByteOffset: 4 * i, as: UInt32.self))))
        }
    case .f32, .f64:
        preconditionFailure("decodeInts called on \(type) data")
    }
}

/// Copies `count` elements of `elementSize` bytes, reversing the bytes of each: big-endian to
/// native and back are the same operation on a little-endian machine.
func swapBytes(_ src: UnsafeRawPointer, into dst: UnsafeMutableRawPointer, count: Int, elementSize: Int) {
    switch elementSize {
    case 1:
        dst.copyMemory(from: src, byteCount: count)
    case 2:
        for i in 0..<count {
            let v = UInt16(bigEndian: src.loadUnaligned(fromByteOffset: 2 * i, as: UInt16.self))
            dst.storeBytes(of: v, toByteOffset: 2 * i, as: UInt16.self)
        }
    case 4:
        for i in 0..<count {
            let v = UInt32(bigEndian: src.loadUnaligned(fromByteOffset: 4 * i, as: UInt32.self))
            dst.storeBytes(of: v, toByteOffset: 4 * i, as: UInt32.self)
        }
    case 8:
        for i in 0..<count {
            let v = UInt64(bigEndian: src.loadUnaligned(fromByteOffset: 8 * i, as: UInt64.self))
            dst.storeBytes(of: v, toByteOffset: 8 * i, as: UInt64.self)
        }
    default:
        preconditionFailure("no IDX element is \(elementSize) bytes")
    }
}
