import Foundation
import Testing
@testable import NNHDF5

/// Attributes of every kind h5py writes, and groups joined by soft, external and cyclic links.
@Suite struct AttributeAndLinkTests {
    @Test func attributeNamesInByteOrder() throws {
        let expected = try Fixtures.expected("attrs.h5")
        let file = try HDF5File.open(path: Fixtures.path("attrs.h5"))
        #expect(try file.attributeNames() == (expected["names"] as? [String]))
        #expect(try file.group("group").attributeNames() == ["note"])
        #expect(try file.dataset("dataset").attributeNames() == ["scale", "units"])
        #expect(try file.hasAttribute("int_scalar"))
        #expect(try !file.hasAttribute("nope"))
    }

    @Test func stringAttributes() throws {
        let expected = try Fixtures.expected("attrs.h5")
        let file = try HDF5File.open(path: Fixtures.path("attrs.h5"))
        // str -> vlen UTF-8; bytes -> vlen ASCII; np.bytes_ -> fixed-length scalar.
        for name in ["str_scalar", "bytes_scalar", "fixed_scalar"] {
            let value = try #require(expected[name] as? String)
            #expect(try file.stringAttribute(name) == value, "\(name)")
            #expect(try file.attribute(name) == .string(value), "\(name)")
            #expect(try file.stringArrayAttribute(name) == [value], "\(name)")
        }
        for name in ["fixed_array", "vlen_array"] {
            let values = try #require(expected[name] as? [String])
            #expect(try file.stringArrayAttribute(name) == values, "\(name)")
            #expect(try file.attribute(name) == .strings(values), "\(name)")
        }
        #expect(try file.group("group").stringAttribute("note") == "on a group")
        #expect(try file.dataset("dataset").stringAttribute("units") == "m/s")
        // An empty float64 array reads as an empty list of strings (Keras's empty weight_names).
        #expect(try file.stringArrayAttribute("empty_float_array") == [])
    }

    @Test func numericAttributes() throws {
        let expected = try Fixtures.expected("attrs.h5")
        let file = try HDF5File.open(path: Fixtures.path("attrs.h5"))
        let intScalar = try #require(expected["int_scalar"] as? Int)
        #expect(try file.integerAttribute("int_scalar") == Int64(intScalar))
        #expect(try file.attribute("int_scalar") == .integer(Int64(intScalar)))
        #expect(try file.doubleAttribute("int_scalar") == Double(intScalar))
        let intArray = try #require(expected["int_array"] as? [Int]).map { Int64($0) }
        #expect(try file.integerArrayAttribute("int_array") == intArray)
        #expect(try file.attribute("int_array") == .integers(intArray))

        #expect(doubleBits([try file.doubleAttribute("float_scalar")]) == [expected["float_scalar"] as? String])
        #expect(doubleBits(try file.doubleArrayAttribute("float_array")) == (expected["float_array"] as? [String]))
        #expect(doubleBits(try file.doubleArrayAttribute("float_2d")) == (expected["float_2d"] as? [String]))
        #expect(try file.attributeInfo("float_2d").shape == [2, 3])
        #expect(try file.doubleAttribute("half") == (expected["half"] as? Double))
        #expect(try file.attributeInfo("half").elementType == .float(bits: 16))
        #expect(try file.dataset("dataset").doubleAttribute("scale") == 0.5)
        if case let .doubles(values)? = try? file.attribute("float_array") {
            #expect(doubleBits(values) == (expected["float_array"] as? [String]))
        } else {
            Issue.record("float_array should read as .doubles")
        }
    }

    @Test func attributeErrors() throws {
        let path = Fixtures.path("attrs.h5")
        let file = try HDF5File.open(path: path)
        #expect(hdf5Error { _ = try file.stringAttribute("missing") }?.description
            == "\(path): /: no attribute 'missing'")
        #expect(hdf5Error { _ = try file.stringAttribute("int_scalar") }?.description
            == "\(path): / (attribute 'int_scalar'): expected a string attribute, found 'int64'")
        #expect(hdf5Error { _ = try file.doubleAttribute("str_scalar") }?.description
            == "\(path): / (attribute 'str_scalar'): expected a numeric attribute, found 'string'")
        // h5py stores bool as an HDF5 enum.
        #expect(hdf5Error { _ = try file.attribute("bool_attr") }?.description
            == "\(path): / (attribute 'bool_attr'): expected a string or numeric attribute, found 'enum'")
        #expect(hdf5Error { _ = try file.attribute("empty") }?.description
            == "\(path): / (attribute 'empty'): the attribute has no value (empty dataspace)")
        #expect(hdf5Error { _ = try file.integerAttribute("uint_big") }?.description
            == "\(path): / (attribute 'uint_big'): value 18446744073709551615 does not fit in a signed 64-bit integer")
        #expect(hdf5Error { _ = try file.stringAttribute("fixed_array") }?.description
            == "\(path): / (attribute 'fixed_array'): expected a single string, found 3 strings of shape [3]")
        #expect(hdf5Error { try file.setAttribute("x", .integer(1)) }?.description
            == "\(path): / (attribute 'x'): the file is open read-only")
    }

    @Test func memberKinds() throws {
        let expected = try Fixtures.expected("links.h5")
        let file = try HDF5File.open(path: Fixtures.path("links.h5"))
        let members = try file.members()
        #expect(members.map(\.name) == (expected["root_members"] as? [String]))
        let kinds = Dictionary(uniqueKeysWithValues: members.map { ($0.name, $0.kind) })
        #expect(kinds == [
            "a": .group, "cycle": .group, "dangling": .danglingLink, "deep": .group,
            "ext": .externalLink, "named_type": .namedDatatype, "soft": .group,
        ])
    }

    @Test func linksAreResolvedSafely() throws {
        let path = Fixtures.path("links.h5")
        let file = try HDF5File.open(path: path)
        // A soft link leads to its target.
        #expect(try file.group("soft").members() == [HDF5Member(name: "c", kind: .group)])
        #expect(try file.dataset("soft/c/d/leaf").readDoubles() == [0, 1, 2, 3])
        // External links are never followed, dangling ones are reported as such.
        #expect(hdf5Error { _ = try file.dataset("ext") }?.description
            == "\(path): /ext: is an external link to another file; external links are not followed")
        #expect(hdf5Error { _ = try file.group("ext/x") }?.description
            == "\(path): /ext: is an external link to another file; external links are not followed")
        #expect(hdf5Error { _ = try file.group("dangling") }?.description
            == "\(path): /dangling: is a soft link to an object that does not exist")
        #expect(hdf5Error { _ = try file.dataset("named_type") }?.description
            == "\(path): /named_type: expected a dataset, found a named datatype")
        #expect(hdf5Error { _ = try file.group("a/x/y") }?.description
            == "\(path): /a/x: expected a group, found a dataset")
    }

    @Test func walksMatchH5pyAndSurviveCycles() throws {
        let expected = try Fixtures.expected("links.h5")
        let file = try HDF5File.open(path: Fixtures.path("links.h5"))
        #expect(try file.group("a").datasetPaths() == (expected["a_datasets"] as? [String]))
        // cycle/child/back is a hard link to /cycle; cycle/alias_of_leaf is /a/b/c/d/leaf again.
        let cycle = try file.group("cycle")
        #expect(try cycle.group("child").members().count == (expected["cycle_member_count"] as? Int))
        #expect(try cycle.datasetPaths() == ["/cycle/alias_of_leaf"])
        #expect(try cycle.group("child/back/child/back").path == "/cycle/child/back/child/back")
    }

    @Test func nestingIsBounded() throws {
        let expected = try Fixtures.expected("links.h5")
        let deepPath = try #require(expected["deep_path"] as? String)
        let path = Fixtures.path("links.h5")
        let file = try HDF5File.open(path: path)
        // 82 components: more than the default limit of 64.
        #expect(hdf5Error { _ = try file.dataset(deepPath) }?.description.hasPrefix(
            "\(path): /deep/g/g/g") == true)
        #expect(hdf5Error { _ = try file.dataset(deepPath) }?.description.hasSuffix(
            ": the path has 82 components, more than the limit of 64") == true)
        let walkError = hdf5Error { _ = try file.datasetPaths() }
        #expect(walkError?.description.hasSuffix(": groups are nested deeper than the limit of 64 levels") == true)

        let generous = try HDF5File.open(path: path, limits: HDF5Limits(maxPathDepth: 100))
        #expect(try generous.dataset(deepPath).readIntegers() == [7])
        #expect(try generous.group("deep").datasetPaths() == [deepPath])

        let small = try HDF5File.open(path: path, limits: HDF5Limits(maxMembers: 3))
        #expect(hdf5Error { _ = try small.members() }?.description
            == "\(path): /: the group has 7 members, more than the limit of 3")
        let fewObjects = try HDF5File.open(path: path, limits: HDF5Limits(maxWalkObjects: 10))
        #expect(hdf5Error { _ = try fewObjects.datasetPaths() }?.description
            == "\(path): /: more than 10 objects below this group")
    }
}
