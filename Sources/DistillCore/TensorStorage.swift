/// A growable, 64-byte aligned block of `Float`s with reference semantics.
///
/// Layers keep one storage per activation and gradient and reuse it from step to step:
/// `reserve(_:)` allocates only when a larger batch than any before arrives.
public final class TensorStorage {
    /// The first element. Valid for `capacity` elements.
    public private(set) var pointer: UnsafeMutablePointer<Float>
    /// How many elements the block holds.
    public private(set) var capacity: Int

    /// A zero-filled block of `capacity` elements.
    public init(capacity: Int) {
        precondition(capacity >= 0, "TensorStorage: negative capacity \(capacity)")
        self.capacity = capacity
        self.pointer = TensorStorage.allocate(capacity)
    }

    deinit { pointer.deallocate() }

    /// Makes room for at least `count` elements. Contents are kept when no allocation is needed
    /// and zero otherwise.
    public func reserve(_ count: Int) {
        guard count > capacity else { return }
        pointer.deallocate()
        pointer = TensorStorage.allocate(count)
        capacity = count
    }

    private static func allocate(_ count: Int) -> UnsafeMutablePointer<Float> {
        let raw = UnsafeMutableRawPointer.allocate(
            byteCount: max(count, 1) * MemoryLayout<Float>.stride, alignment: 64)
        let typed = raw.bindMemory(to: Float.self, capacity: max(count, 1))
        typed.initialize(repeating: 0, count: max(count, 1))
        return typed
    }
}
