import DistillCore
import DistillTestSupport
import XCTest

@testable import DistillNN

/// The sequence layers: values worked by hand or known from PyTorch's definitions, and every
/// backward pass against central differences (batch 1, sequence length 1, sizes that are not
/// powers of two).
final class SequenceLayerTests: XCTestCase {
    func testLayerNormValuesAndGradients() throws {
        // x = [1, 2, 3, 4]: mean 2.5, biased variance 1.25, PyTorch's epsilon inside the root.
        let layer = LayerNorm(dimension: 4)
        let y = layer.forward(Tensor(shape: [1, 4], values: [1, 2, 3, 4]), mode: .inference).values
        let rstd = 1 / (1.25 + 1e-5).squareRoot()
        assertClose(y, [-1.5 * rstd, -0.5 * rstd, 0.5 * rstd, 1.5 * rstd], rtol: 1e-6)
        // A constant row normalises to zero: the output is the bias.
        for i in 0..<4 { layer.bias.value[i] = Float(i) }
        assertClose(
            layer.forward(Tensor(shape: [1, 4], values: [3, 3, 3, 3]), mode: .inference).values,
            [0, 1, 2, 3])
        // Rows of 19 (two groups of eight lanes and a tail) far from zero, against the same
        // formula in Double: the variance is taken over centred values.
        let wide = LayerNorm(dimension: 19)
        let row = fixtureValues(38, seed: 8, scale: 1).map { 1000 + $0 }
        let normalized = wide.forward(Tensor(shape: [2, 19], values: row), mode: .inference).values
        for r in 0..<2 {
            let values = row[(19 * r)..<(19 * r + 19)].map(Double.init)
            let mean = values.reduce(0, +) / 19
            let variance = values.map { ($0 - mean) * ($0 - mean) }.reduce(0, +) / 19
            assertClose(
                Array(normalized[(19 * r)..<(19 * r + 19)]),
                values.map { ($0 - mean) / (variance + 1e-5).squareRoot() }, rtol: 0, atol: 2e-4)
        }
        // [2, 130, 5]: 260 rows, two blocks of the parameter gradients' partial sums (with
        // Richardson's extrapolation: among that many short rows some have a small variance,
        // where the gradient is large and curved).
        for shape in [[1, 1, 5], [2, 3, 7], [2, 3, 19], [1, 2, 16], [2, 130, 5]] {
            let norm = LayerNorm(dimension: shape.last!)
            let scales = fixtureValues(shape.last!, seed: 9, scale: 1)
            let shifts = fixtureValues(shape.last!, seed: 10)
            for i in 0..<norm.dimension {
                (norm.weight.value[i], norm.bias.value[i]) = (1 + scales[i], shifts[i])
            }
            try checkGradients(norm, inputShape: shape, seed: 21, smooth: shape[1] > 100)
        }
        // With a residual gradient the input gradient comes back with it added, the parameter
        // gradients unchanged.
        let norm = LayerNorm(dimension: 11)
        let x = Tensor(shape: [3, 11], values: fixtureValues(33, seed: 12, scale: 1))
        let dy = Tensor(shape: [3, 11], values: fixtureValues(33, seed: 13, scale: 1))
        let residual = Tensor(shape: [3, 11], values: fixtureValues(33, seed: 14, scale: 1))
        func gradients(adding residual: Tensor?) -> (input: [Float], weight: [Float]) {
            for p in norm.parameters { p.zeroGradient() }
            _ = norm.forward(x, mode: .training)
            return (norm.backward(dy, adding: residual).values, norm.weight.gradient!.values)
        }
        let plain = gradients(adding: nil)
        let added = gradients(adding: residual)
        assertClose(added.input, zip(plain.input, residual.values).map { Double($0 + $1) })
        XCTAssertEqual(added.weight, plain.weight)
        // A second backward pass without zeroing adds to the parameter gradients.
        _ = norm.backward(dy)
        assertClose(norm.weight.gradient!.values, plain.weight.map { 2 * Double($0) })
        assertClose(
            norm.bias.gradient!.values,
            (0..<11).map { j in 2 * (0..<3).reduce(0.0) { $0 + Double(dy[$1 * 11 + j]) } })
    }

    /// The vectorised normal CDF against float64 `erf` from -10 to 10 (Abramowitz and Stegun's
    /// bound, 1.5e-7 on erf, plus Float rounding: 2.5e-7), and the layer on a length that leaves a partial lane.
    func testGELUMatchesErfAcrossTheRange() throws {
        let grid = (0...4000).map { Float(-10 + Double($0) / 200) }
        var worst = 0.0
        for start in stride(from: 0, to: grid.count - 8, by: 8) {
            let x = SIMD8<Float>(grid[start..<(start + 8)])
            let (cdf, density) = GELU.normalCDF(x)
            for j in 0..<8 {
                let v = Double(x[j])
                worst = max(worst, abs(Double(cdf[j]) - 0.5 * (1 + erf(v / 2.0.squareRoot()))))
                // Relative error up to x^2/2 times Float's rounding of x^2/2 (about 6e-6 at 10).
                assertClose(
                    [density[j]], [exp(-v * v / 2) / (2 * Double.pi).squareRoot()], rtol: 1e-5,
                    atol: 1e-30)
            }
        }
        XCTAssertLessThanOrEqual(worst, 2.5e-7)
        let x = Tensor(shape: [13], values: (0..<13).map { Float($0) / 2 - 3 })
        assertClose(
            GELU().forward(x, mode: .inference).values,
            x.values.map { Double($0) * 0.5 * (1 + erf(Double($0) / 2.0.squareRoot())) },
            rtol: 0, atol: 5e-7)
    }

    func testGELUValuesAndGradients() throws {
        let x = Tensor(shape: [4], values: [-1, 0, 1, 2.5])
        // x Phi(x): Phi(1) = 0.8413447, Phi(2.5) = 0.9937903.
        assertClose(
            GELU().forward(x, mode: .inference).values,
            [-0.1586553, 0, 0.8413447, 2.5 * 0.9937903], rtol: 1e-6, atol: 1e-7)
        // The tanh form at 1: (1 + tanh(sqrt(2/pi) * 1.044715)) / 2 = 0.8411920.
        assertClose(
            GELU(approximation: .tanh).forward(x, mode: .inference)[2], 0.8411920, rtol: 1e-6)
        for approximation in [GELU.Approximation.exact, .tanh] {
            try checkGradients(GELU(approximation: approximation), inputShape: [1, 1, 5], seed: 4)
            try checkGradients(GELU(approximation: approximation), inputShape: [2, 3, 7], seed: 5)
        }
    }

    func testEmbeddingLooksUpRowsAndScattersGradients() throws {
        var generator = SeededGenerator(seed: 3)
        let embedding = Embedding(vocabulary: 11, dimension: 3, generator: &generator)
        let ids = Tensor(shape: [2, 3], values: [4, 0, 4, 10, 7, 4])  // id 4 three times
        let y = embedding.forward(ids, mode: .training)
        XCTAssertEqual(y.shape, [2, 3, 3])
        for (i, id) in ids.values.enumerated() {
            XCTAssertEqual(
                Array(y.values[(i * 3)..<(i * 3 + 3)]),
                Array(embedding.weight.value.values[(Int(id) * 3)..<(Int(id) * 3 + 3)]))
        }
        // L = sum(w * out): dweight[v] = sum of w over the positions holding v, other rows zero.
        let w = Tensor(shape: [2, 3, 3], values: fixtureValues(18, seed: 8))
        embedding.weight.zeroGradient()
        XCTAssertEqual(embedding.backward(w).count, 0)  // ids get no gradient
        let gradient = embedding.weight.gradient!.values
        var expected = [Float](repeating: 0, count: 33)
        for (i, id) in ids.values.enumerated() {
            for j in 0..<3 { expected[Int(id) * 3 + j] += w[i * 3 + j] }
        }
        assertClose(gradient, expected, rtol: 1e-6, atol: 1e-7)
        // Accumulated into an optimizer's running sum: buffer = 0.9 buffer + gradient.
        let buffer = Tensor(shape: [11, 3], values: [Float](repeating: 1, count: 33))
        embedding.weight.zeroGradient()
        embedding.weight.accumulate(into: buffer, scaling: 0.9)
        _ = embedding.backward(w)
        assertClose(buffer.values, expected.map { 0.9 + $0 }, rtol: 1e-6)
    }

    func testPositionEmbeddingAddsPositionsAndTheirGradients() throws {
        var generator = SeededGenerator(seed: 5)
        let positions = PositionEmbedding(context: 6, dimension: 5, generator: &generator)
        let x = Tensor(shape: [2, 4, 5], values: fixtureValues(40, seed: 6))
        let y = positions.forward(x, mode: .training)
        XCTAssertEqual(
            y[1 * 20 + 3 * 5 + 2], x[1 * 20 + 3 * 5 + 2] + positions.weight.value[3 * 5 + 2])
        XCTAssertThrowsError(try positions.outputShape(for: [1, 7, 5]))  // longer than the context
        try checkGradients(positions, inputShape: [1, 1, 5], seed: 12)
        try checkGradients(positions, inputShape: [3, 6, 5], seed: 13)
    }

    func testSelfAttentionGradients() throws {
        var generator = SeededGenerator(seed: 7)
        for (causal, shape, heads) in [
            (true, [1, 1, 6], 2), (true, [2, 5, 6], 3), (false, [2, 5, 6], 2),
            (true, [1, 7, 5], 1),
            // rows of scores that fill groups of eight lanes, with and without a tail
            (true, [1, 19, 4], 2), (false, [2, 16, 4], 1),
            // causal tiles of queries: two and a part, and with padding
            (true, [1, 70, 4], 2), (true, [2, 40, 4], 2),
        ] {
            let attention = SelfAttention(
                dimension: shape[2], heads: heads, causal: causal, generator: &generator)
            // non-zero biases, so their gradients matter
            for p in [attention.inBias, attention.outBias] {
                for i in 0..<p.value.count {
                    p.value[i] = fixtureValues(p.value.count, seed: 3, scale: 0.5)[i]
                }
            }
            try checkGradients(attention, inputShape: shape, seed: 30)
            // With padding: the second sequence's last two positions.
            if shape[0] == 2 {
                attention.keyPadding = (0..<(2 * shape[1])).map { $0 >= 2 * shape[1] - 2 }
                try checkGradients(attention, inputShape: shape, seed: 31)
                attention.keyPadding = nil
            }
        }
    }

    /// Masks are data: an output never depends, not even by rounding, on a key it may not see,
    /// and such a key's input gets exactly zero gradient from the outputs that cannot see it.
    func testMaskedKeysGetZeroProbabilityAndZeroGradient() throws {
        var generator = SeededGenerator(seed: 8)
        let (t, c) = (6, 4)
        let attention = SelfAttention(dimension: c, heads: 2, causal: true, generator: &generator)
        // positions 2 and 4 are padding
        attention.keyPadding = [false, false, true, false, true, false]
        let x = Tensor(shape: [1, t, c], values: fixtureValues(t * c, seed: 2))
        let before = attention.forward(x, mode: .training).values
        // Perturb position 4 (padding) and position 5 (after every query but the last).
        let perturbed = Tensor(shape: [1, t, c], values: x.values)
        for j in 0..<c {
            perturbed[4 * c + j] += 3
            perturbed[5 * c + j] -= 2
        }
        let after = attention.forward(perturbed, mode: .training).values
        for i in [0, 1, 2, 3] {  // queries that see neither position 4 (padding) nor 5 (causal)
            XCTAssertEqual(
                Array(after[(i * c)..<(i * c + c)]), Array(before[(i * c)..<(i * c + c)]),
                "query \(i)")
        }
        // The gradient of the outputs of queries 0, 1 and 3 (not padding) reaches no input beyond
        // position 3, nor position 2 (padding: its key and value are masked, its query unused).
        _ = attention.forward(x, mode: .training)
        for p in attention.parameters { p.zeroGradient() }
        let dy = Tensor(
            shape: [1, t, c], values: (0..<(t * c)).map { [0, 1, 3].contains($0 / c) ? 1 : 0 })
        let dx = attention.backward(dy).values
        XCTAssertEqual(Array(dx[(2 * c)..<(3 * c)]), [Float](repeating: 0, count: c))
        XCTAssertEqual(Array(dx[(4 * c)...]), [Float](repeating: 0, count: 2 * c))
        XCTAssertTrue(dx[0..<(2 * c)].contains { $0 != 0 })
    }

    /// The block's residual paths and its parts together, against central differences; its
    /// parameters carry their parts' names.
    func testTransformerBlockGradients() throws {
        var generator = SeededGenerator(seed: 9)
        let block = TransformerBlock(
            dimension: 6, heads: 2, mlp: 10, causal: true, generator: &generator)
        for p in block.parameters where !p.isWeight {  // non-trivial LayerNorm scales and biases
            let values = fixtureValues(p.value.count, seed: UInt64(p.value.count), scale: 0.3)
            for i in 0..<p.value.count { p.value[i] += values[i] }
        }
        XCTAssertEqual(
            block.namedParameters.map(\.name),
            [
                "ln_1.weight", "ln_1.bias", "attn.in_proj_weight", "attn.in_proj_bias",
                "attn.out_proj.weight",
                "attn.out_proj.bias", "ln_2.weight", "ln_2.bias", "mlp.c_fc.weight",
                "mlp.c_fc.bias",
                "mlp.c_proj.weight", "mlp.c_proj.bias",
            ])
        try checkGradients(block, inputShape: [1, 1, 6], seed: 40, smooth: true)
        try checkGradients(block, inputShape: [2, 3, 6], seed: 41, smooth: true)
    }

    /// With dropout the block drops where nn.TransformerEncoderLayer does (three layers, each
    /// seeded), only in training mode (in inference mode it is its parts and residual sums); its
    /// gradients hold for a fixed mask (each objective call draws the same masks again from
    /// generators reset to the same state).
    func testTransformerBlockDropout() throws {
        var generator = SeededGenerator(seed: 10)
        let block = TransformerBlock(
            dimension: 6, heads: 2, mlp: 10, causal: true, dropout: 0.3, generator: &generator)
        XCTAssertEqual(block.dropoutLayers.count, 3)
        XCTAssertTrue(
            Sequential([LayerNorm(dimension: 6), block]).dropoutLayers.elementsEqual(
                block.dropoutLayers, by: ===))
        XCTAssertEqual(block.descriptor, "block:6:2:10:d0.3:causal")
        let x = Tensor(shape: [2, 3, 6], values: fixtureValues(36, seed: 2))
        let inference = block.forward(x, mode: .inference).values
        let training = block.forward(x, mode: .training).values
        XCTAssertNotEqual(inference, training)
        XCTAssertEqual(block.forward(x, mode: .inference).values, inference)
        // In inference mode the block is its parts with their residual sums, the dropouts left
        // out (the projections add the residuals as they lay their biases down).
        func part(_ layer: any Layer, _ input: Tensor) -> Tensor {
            layer.forward(input, mode: .inference).copy()
        }
        let attended = part(block.attention, part(block.norm1, x))
        let middle = Tensor(shape: x.shape, values: zip(x.values, attended.values).map(+))
        let branch = part(
            block.project,
            part(block.activation, part(block.expand, part(block.norm2, middle))))
        assertClose(
            inference, zip(middle.values, branch.values).map { Double($0 + $1) }, rtol: 1e-5,
            atol: 1e-6)
        let states = block.dropoutLayers.map(\.generator)
        try checkGradients(
            block, inputShape: [2, 3, 6], seed: 42,
            prepare: {
                for (layer, state) in zip(block.dropoutLayers, states) { layer.generator = state }
            },
            smooth: true)
        let rebuilt = try LayerDescriptor.make(block.descriptor, generator: &generator)
        XCTAssertEqual(rebuilt.descriptor, block.descriptor)
        XCTAssertEqual(rebuilt.dropoutLayers.count, 3)
    }

    /// Each layer's descriptor builds the same layer again, and counts its parameters.
    func testDescriptorsRebuildTheLayers() throws {
        var generator = SeededGenerator(seed: 1)
        let layers: [any Layer] = [
            Embedding(vocabulary: 256, dimension: 24, generator: &generator),
            PositionEmbedding(context: 33, dimension: 24, generator: &generator),
            LayerNorm(dimension: 24),
            GELU(), GELU(approximation: .tanh),
            SelfAttention(dimension: 24, heads: 3, causal: true, generator: &generator),
            SelfAttention(dimension: 6, heads: 2, causal: false, generator: &generator),
            TransformerBlock(dimension: 12, heads: 3, mlp: 20, causal: true, generator: &generator),
        ]
        for layer in layers {
            let rebuilt = try LayerDescriptor.make(layer.descriptor, generator: &generator)
            XCTAssertEqual(rebuilt.descriptor, layer.descriptor)
            XCTAssertEqual(
                rebuilt.parameters.map(\.value.shape), layer.parameters.map(\.value.shape))
            XCTAssertEqual(
                try LayerDescriptor.parameterCount(layer.descriptor),
                Double(layer.parameters.reduce(0) { $0 + $1.value.count }))
        }
        XCTAssertThrowsError(try LayerDescriptor.make("gelu:erf", generator: &generator))
        XCTAssertThrowsError(try LayerDescriptor.make("embedding:0:4", generator: &generator))
        // 4 does not divide 10
        XCTAssertThrowsError(try LayerDescriptor.make("attention:10:4", generator: &generator))
    }
}
