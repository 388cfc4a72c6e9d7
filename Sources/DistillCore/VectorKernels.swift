/// Small vectorised loops shared by layers and optimizers. Each works on raw pointers so it can
/// run on any slice, and splits across cores only when the slice is large.

/// Eight-lane Float vectors.
public typealias Float8 = SIMD8<Float>

@inlinable @inline(__always)
public func load8(_ p: UnsafePointer<Float>) -> Float8 {
    UnsafeRawPointer(p).loadUnaligned(as: Float8.self)
}

@inlinable @inline(__always)
public func store8(_ v: Float8, _ p: UnsafeMutablePointer<Float>) {
    UnsafeMutableRawPointer(p).storeBytes(of: v, as: Float8.self)
}

/// The sum of the eight lanes, by halves (the stdlib's `sum()` is a generic lane loop that is not
/// inlined).
@inlinable @inline(__always)
public func horizontalSum(_ v: Float8) -> Float {
    let four = v.lowHalf + v.highHalf
    let two = four.lowHalf + four.highHalf
    return two[0] + two[1]
}

/// The largest of the eight lanes, by halves.
@inlinable @inline(__always)
public func horizontalMax(_ v: Float8) -> Float {
    var four = v.lowHalf
    four.replace(with: v.highHalf, where: v.highHalf .> four)
    var two = four.lowHalf
    two.replace(with: four.highHalf, where: four.highHalf .> two)
    return two[1] > two[0] ? two[1] : two[0]
}

/// The first `count` (1 to 7) elements of `p`, then `pad`. Lane indices are constants in each
/// case, so no lane is written through memory.
@inline(never)
public func loadPartial(_ p: UnsafePointer<Float>, _ count: Int, pad z: Float) -> Float8 {
    switch count {
    case 1: return Float8(p[0], z, z, z, z, z, z, z)
    case 2: return Float8(p[0], p[1], z, z, z, z, z, z)
    case 3: return Float8(p[0], p[1], p[2], z, z, z, z, z)
    case 4: return Float8(p[0], p[1], p[2], p[3], z, z, z, z)
    case 5: return Float8(p[0], p[1], p[2], p[3], p[4], z, z, z)
    case 6: return Float8(p[0], p[1], p[2], p[3], p[4], p[5], z, z)
    case 7: return Float8(p[0], p[1], p[2], p[3], p[4], p[5], p[6], z)
    default: return Float8(repeating: z)
    }
}

/// Stores the first `count` (1 to 7) lanes of `v`.
@inline(never)
public func storePartial(_ v: Float8, _ p: UnsafeMutablePointer<Float>, _ count: Int) {
    if count >= 4 {
        UnsafeMutableRawPointer(p).storeBytes(of: v.lowHalf, as: SIMD4<Float>.self)
        for k in 4..<count { p[k] = v[k] }
    } else {
        for k in 0..<count { p[k] = v[k] }
    }
}

/// The lanes of a group of eight whose index is `count` or more: the lanes past the end of a row
/// that has `count` elements left.
@inlinable @inline(__always)
public func lanes(atOrPast count: Int) -> SIMDMask<SIMD8<Int32>> {
    SIMD8<Int32>(0, 1, 2, 3, 4, 5, 6, 7) .>= SIMD8<Int32>(repeating: Int32(count))
}

/// `v` with the lanes where `mask` is true set to +0, by a bit operation (the stdlib's
/// `replacing(with:where:)` can compile to a loop over lanes through memory). NaN lanes outside
/// the mask stay NaN.
@inlinable @inline(__always)
public func zeroing(_ v: Float8, where mask: SIMDMask<SIMD8<Int32>>) -> Float8 {
    let bits = unsafeBitCast(v, to: SIMD8<Int32>.self) & ~unsafeBitCast(mask, to: SIMD8<Int32>.self)
    return unsafeBitCast(bits, to: Float8.self)
}

/// The body of an `elementwise` loop: what to do with eight consecutive elements, and with one
/// element of the tail.
///
/// A kernel is a struct (its pointers and constants as stored properties) rather than a pair of
/// closures so that `elementwise` is specialised for it and the calls inline: closures passed
/// through `parallelFor` stay indirect calls, one per eight elements, which cost an optimizer
/// update three times its memory time.
public protocol ElementwiseKernel {
    /// Processes elements `i ..< i + 8`.
    func eight(at i: Int)
    /// Processes element `i`.
    func one(at i: Int)
}

/// Applies `kernel` to consecutive groups of eight elements of `0..<count` and to the remaining
/// tail one by one, splitting the range across cores when `count >= minimumParallel`.
@inlinable
public func elementwise<Kernel: ElementwiseKernel>(
    _ count: Int, minimumParallel: Int = 1 << 17, _ kernel: Kernel
) {
    parallelFor((count + 7) / 8, costPerItem: 8, minimumWork: minimumParallel) { groups in
        var i = groups.lowerBound * 8
        let end = min(groups.upperBound * 8, count)
        while i + 8 <= end {
            kernel.eight(at: i)
            i += 8
        }
        while i < end {
            kernel.one(at: i)
            i += 1
        }
    }
}

/// `sum_i p[i]` in Double over blocks of Float lanes.
public func sum(_ p: UnsafePointer<Float>, _ n: Int) -> Double {
    var total = 0.0
    var start = 0
    while start < n {
        let end = min(start + 4096, n)
        var v = Float8.zero
        var i = start
        while i + 8 <= end {
            v += load8(p + i)
            i += 8
        }
        var rest: Float = 0
        while i < end {
            rest += p[i]
            i += 1
        }
        total += Double(horizontalSum(v)) + Double(rest)
        start = end
    }
    return total
}

/// The index of the first largest of `count` values at `row` (as `torch.argmax`; 0 when `count`
/// is 0). Comparisons with NaN are false: a NaN is passed over, unless it comes first.
@inlinable
public func indexOfMaximum(_ row: UnsafePointer<Float>, count: Int) -> Int {
    var best = 0
    for i in 1..<max(count, 1) where row[i] > row[best] { best = i }
    return best
}

/// The index of the first largest of `values[start ..< start + count]`, relative to `start`.
@inlinable
public func indexOfMaximum(_ values: [Float], start: Int, count: Int) -> Int {
    precondition(start >= 0 && start + count <= values.count)
    return values.withUnsafeBufferPointer { indexOfMaximum($0.baseAddress! + start, count: count) }
}
