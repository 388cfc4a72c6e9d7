import DistillCore
import DistillTestSupport
import XCTest

@testable import DistillNN

/// The taggers' layers: the summed feature embedding (padding id 0) and the word window, and the
/// two tagger architectures built from their specs.
final class TaggerLayerTests: XCTestCase {
    func testFeatureEmbeddingSumsRowsAndSkipsPadding() throws {
        var generator = SeededGenerator(seed: 3)
        let layer = FeatureEmbedding(vocabulary: 9, slots: 3, dimension: 4, generator: &generator)
        // Two positions: ids (2, 5, 2) and padding (0, 0, 0).
        let ids = Tensor(shape: [1, 2, 3], values: [2, 5, 2, 0, 0, 0])
        let y = layer.forward(ids, mode: .training)
        XCTAssertEqual(y.shape, [1, 2, 4])
        let w = layer.weight.value
        for j in 0..<4 {
            XCTAssertEqual(y[j], w[2 * 4 + j] + w[5 * 4 + j] + w[2 * 4 + j], accuracy: 1e-6)
            XCTAssertEqual(y[4 + j], 0)  // padding embeds to zero
        }
        XCTAssertEqual(layer.padding(of: ids), [false, true])
        XCTAssertNil(layer.padding(of: Tensor(shape: [1, 1, 3], values: [0, 1, 0])))
        // L = sum(g * out): dweight[v] = g times the number of times v occurs; row 0 untouched.
        let g = Tensor(shape: [1, 2, 4], values: fixtureValues(8, seed: 4))
        layer.weight.zeroGradient()
        XCTAssertEqual(layer.backward(g).count, 0)
        let gradient = layer.weight.gradient!.values
        for j in 0..<4 {
            XCTAssertEqual(gradient[2 * 4 + j], 2 * g[j], accuracy: 1e-6)
            XCTAssertEqual(gradient[5 * 4 + j], g[j], accuracy: 1e-6)
            XCTAssertEqual(gradient[j], 0)  // padding's row gets no gradient
        }
        XCTAssertEqual(gradient.filter { $0 != 0 }.count, 8)
        XCTAssertThrowsError(try layer.outputShape(for: [1, 2, 4]))  // 4 ids per position, not 3
    }

    func testWordWindowPlacesNeighboursAndGradients() throws {
        let window = WordWindow(radius: 1)
        let x = Tensor(shape: [1, 3, 2], values: [1, 2, 3, 4, 5, 6])
        // Position 0: [zeros, x0, x1]; position 2: [x1, x2, zeros].
        XCTAssertEqual(
            window.forward(x, mode: .inference).values,
            [0, 0, 1, 2, 3, 4, 1, 2, 3, 4, 5, 6, 3, 4, 5, 6, 0, 0])
        try checkGradients(WordWindow(radius: 2), inputShape: [2, 5, 3], seed: 6)
        try checkGradients(WordWindow(radius: 1), inputShape: [1, 1, 4], seed: 7)
        try checkGradients(WordWindow(radius: 0), inputShape: [1, 3, 2], seed: 8)
    }

    func testTaggerSpecsBuildTheirLayers() throws {
        let encoder = try ArchitectureSpec(parsing: "encoder:layers=2,dim=8,heads=2,context=6")
        XCTAssertEqual(encoder.kind, .encoder)
        XCTAssertEqual(try ArchitectureSpec(parsing: encoder.description), encoder)
        let window = try ArchitectureSpec(parsing: "window:dim=4,hidden=10")
        XCTAssertEqual(window.description, "window:radius=2,dim=4,hidden=10,context=64")
        XCTAssertEqual(
            try ArchitectureSpec(parsing: "window:radius=0,dim=4,hidden=3").window?.radius, 0)
        XCTAssertThrowsError(
            try ArchitectureSpec(parsing: "encoder:layers=1,dim=8,heads=2,context=6,tied"))
        XCTAssertThrowsError(try ArchitectureSpec(parsing: "window:dim=4"))
        var generator = SeededGenerator(seed: 1)
        let shape = [6, ArchitectureSpec.wordFeatureSlots]
        for (spec, classes) in [
            (encoder, 5), (try ArchitectureSpec(parsing: "window:dim=4,hidden=10,context=6"), 3),
        ] {
            let model = try Model(
                spec: spec, inputShape: shape, classes: classes, generator: &generator)
            XCTAssertTrue(model.isTagger)
            XCTAssertEqual(model.positions, 6)
            XCTAssertEqual(
                spec.footprint(inputShape: shape, classes: classes).parameters,
                Double(model.parameterCount))
            // Rebuilt from its descriptors, layer for layer.
            for layer in model.network.layers {
                XCTAssertEqual(
                    try LayerDescriptor.make(layer.descriptor, generator: &generator).descriptor,
                    layer.descriptor)
                XCTAssertEqual(
                    try LayerDescriptor.parameterCount(layer.descriptor),
                    Double(layer.parameters.reduce(0) { $0 + $1.value.count }))
            }
        }
        XCTAssertThrowsError(
            try Model(spec: encoder, inputShape: [7, 6], classes: 3, generator: &generator))
    }

    /// An encoder's outputs at a sentence's words are the same padded to the context (padding
    /// masked as keys) as for the words alone; without the mask they would differ. Every word sees
    /// every other (bidirectional); a window tagger's word sees its radius only.
    func testEncoderMasksPaddingAndSeesBothWays() throws {
        var generator = SeededGenerator(seed: 2)
        let model = try Model(
            spec: ArchitectureSpec(parsing: "encoder:layers=2,dim=8,heads=2,context=6"),
            inputShape: [6, 6], classes: 4, generator: &generator)
        var ids = (0..<18).map { _ in Float(1 + generator.next() % 60000) }
        let padded = Tensor(shape: [1, 6, 6], values: ids + [Float](repeating: 0, count: 18))
        let masked = model.forward(padded, mode: .inference).values
        let blocks = model.network.layers.compactMap { $0 as? TransformerBlock }
        XCTAssertEqual(blocks[0].keyPadding, [false, false, false, true, true, true])
        for block in blocks { block.keyPadding = nil }
        let alone = model.network.forward(Tensor(shape: [1, 3, 6], values: ids), mode: .inference)
        assertClose(Array(masked[0..<12]), alone.values.map(Double.init), rtol: 1e-5, atol: 1e-6)
        let unmasked = model.network.forward(padded, mode: .inference).values
        XCTAssertGreaterThan(
            zip(unmasked[0..<12], masked[0..<12]).map { abs($0 - $1) }.max()!, 1e-4)
        // Changing the third word changes the first word's logits.
        ids[12] += 1
        let changed = model.forward(
            Tensor(shape: [1, 6, 6], values: ids + [Float](repeating: 0, count: 18)),
            mode: .inference
        ).values
        XCTAssertGreaterThan(zip(changed[0..<4], masked[0..<4]).map { abs($0 - $1) }.max()!, 1e-6)
        let tagger = try Model(
            spec: ArchitectureSpec(parsing: "window:radius=1,dim=4,hidden=5,context=6"),
            inputShape: [6, 6], classes: 3, generator: &generator)
        let before = tagger.forward(padded, mode: .inference).values
        let after = tagger.forward(
            Tensor(shape: [1, 6, 6], values: ids + [Float](repeating: 0, count: 18)),
            mode: .inference
        ).values
        XCTAssertEqual(Array(before[0..<3]), Array(after[0..<3]))  // word 0 sees words 0 and 1
        XCTAssertNotEqual(Array(before[3..<6]), Array(after[3..<6]))  // word 1 sees word 2
    }
}
