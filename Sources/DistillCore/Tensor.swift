/// A shaped, row-major array of `Float32` with reference semantics, like a PyTorch tensor.
///
/// Two `Tensor` values made from one another share their storage: writing through one is seen
/// through the other (`reshaped(_:)` is free for that reason). Use `copy()` for an independent
/// tensor. A layer's output tensor belongs to the layer and is overwritten by its next call.
public struct Tensor {
    /// The dimensions, outermost first; `[]` is a scalar.
    public private(set) var shape: [Int]
    /// The product of `shape`.
    public private(set) var count: Int
    /// The shared storage; holds at least `count` elements.
    public let storage: TensorStorage

    /// A zero-filled tensor.
    public init(zeros shape: [Int]) {
        let count = Tensor.elementCount(shape)
        self.shape = shape
        self.count = count
        self.storage = TensorStorage(capacity: count)
    }

    /// A tensor holding `values` in row-major order. `values.count` must equal the product of `shape`.
    public init(shape: [Int], values: [Float]) {
        self.init(zeros: shape)
        precondition(values.count == count, "Tensor: \(values.count) values for shape \(shape)")
        values.withUnsafeBufferPointer { source in
            if let base = source.baseAddress { storage.pointer.update(from: base, count: count) }
        }
    }

    /// A view of `storage` with `shape` (no copy).
    public init(shape: [Int], storage: TensorStorage) {
        let count = Tensor.elementCount(shape)
        precondition(storage.capacity >= count, "Tensor: storage too small for \(shape)")
        self.shape = shape
        self.count = count
        self.storage = storage
    }

    /// The first element.
    @inlinable public var pointer: UnsafeMutablePointer<Float> { storage.pointer }

    /// The elements, as a buffer over the shared storage.
    @inlinable public var buffer: UnsafeMutableBufferPointer<Float> {
        UnsafeMutableBufferPointer(start: storage.pointer, count: count)
    }

    /// A copy of the elements in row-major order.
    public var values: [Float] { Array(buffer) }

    /// Element `i` in row-major order.
    @inlinable public subscript(i: Int) -> Float {
        get { storage.pointer[i] }
        nonmutating set {
            let p = storage.pointer
            p[i] = newValue
        }
    }

    /// The same storage with another shape of equal element count (no copy).
    public func reshaped(_ newShape: [Int]) -> Tensor {
        precondition(
            Tensor.elementCount(newShape) == count,
            "Tensor: cannot reshape \(shape) to \(newShape)")
        return Tensor(shape: newShape, storage: storage)
    }

    /// Changes the shape, growing the storage if needed. Contents are unspecified afterwards.
    /// Allocates nothing when the shape is unchanged or the storage already has room.
    public mutating func resize(to newShape: [Int]) {
        if newShape == shape { return }
        let newCount = Tensor.elementCount(newShape)
        storage.reserve(newCount)
        shape = newShape
        count = newCount
    }

    /// An independent copy.
    public func copy() -> Tensor {
        let result = Tensor(zeros: shape)
        result.pointer.update(from: pointer, count: count)
        return result
    }

    /// Sets every element to `value`.
    public func fill(_ value: Float) {
        pointer.update(repeating: value, count: count)
    }

    /// The product of the dimensions; every dimension must be non-negative.
    public static func elementCount(_ shape: [Int]) -> Int {
        var n = 1
        for d in shape {
            precondition(d >= 0, "Tensor: negative dimension in \(shape)")
            n *= d
        }
        return n
    }
}

extension Tensor: CustomStringConvertible {
    public var description: String {
        let shown = values.prefix(8).map { "\($0)" }.joined(separator: ", ")
        return "Tensor(shape: \(shape), values: [\(shown)\(count > 8 ? ", ..." : "")])"
    }
}
