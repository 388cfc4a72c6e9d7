import DistillCore
import DistillTestSupport
import XCTest

@testable import DistillNN

/// Checks a layer's backward pass against central differences of `L = sum(w * forward(x))` for a
/// fixed random `w`: `dL/dx` against `backward(w)`, and each parameter's gradient.
///
/// The objective is summed in Double. A piecewise linear layer (dense, ReLU, pooling) makes the
/// central difference exact away from kinks (ReLU at 0, max-pooling ties), which the fixtures
/// avoid by construction; what remains is Float rounding of the forward pass, ~1e-7 * |L| / h.
/// With h = 1e-2 that bounds the error near 1e-4, hence atol 5e-4 and rtol 1e-3. For a `smooth`
/// composition (a transformer block) the central difference also errs by O(h^2): Richardson's
/// extrapolation, `(4 D(h / 2) - D(h)) / 3`, cancels that term.
func checkGradients(
    _ layer: any Layer, inputShape: [Int], seed: UInt64, prepare: () -> Void = {},
    smooth: Bool = false,
    file: StaticString = #filePath, line: UInt = #line
) throws {
    func differences(_ x: [Float], _ f: ([Float]) -> Double) -> [Double] {
        let coarse = centralDifferences(x, step: 1e-2, f)
        guard smooth else { return coarse }
        let fine = centralDifferences(x, step: 5e-3, f)
        return zip(fine, coarse).map { (4 * $0 - $1) / 3 }
    }
    let outputShape = try layer.outputShape(for: inputShape)
    let x = Tensor(
        shape: inputShape,
        values: fixtureValues(Tensor.elementCount(inputShape), seed: seed, scale: 1))
    let w = Tensor(
        shape: outputShape,
        values: fixtureValues(Tensor.elementCount(outputShape), seed: seed + 1, scale: 1))
    func objective() -> Double {
        prepare()
        let y = layer.forward(x, mode: .training)
        var total = 0.0
        for i in 0..<y.count { total += Double(y[i]) * Double(w[i]) }
        return total
    }
    layer.computesInputGradient = true
    for p in layer.parameters { p.zeroGradient() }
    _ = objective()
    let dx = layer.backward(w).values
    let parameterGradients = layer.parameters.map { $0.gradient!.values }
    let x0 = x.values
    let numericX = differences(x0) { probe in
        for i in 0..<probe.count { x[i] = probe[i] }
        return objective()
    }
    for i in 0..<x0.count { x[i] = x0[i] }  // the probe leaves its last element perturbed
    assertClose(
        dx, numericX, rtol: 1e-3, atol: 5e-4, "\(layer.descriptor) input gradient", file: file,
        line: line)
    for (p, analytic) in zip(layer.parameters, parameterGradients) {
        let p0 = p.value.values
        let numeric = differences(p0) { probe in
            for i in 0..<probe.count { p.value[i] = probe[i] }
            return objective()
        }
        for i in 0..<p0.count { p.value[i] = p0[i] }
        assertClose(
            analytic, numeric, rtol: 1e-3, atol: 5e-4, "\(layer.descriptor) \(p.name) gradient",
            file: file, line: line)
    }
}

final class LayerGradientTests: XCTestCase {
    var generator = SeededGenerator(seed: 42)

    func testLinear() throws {
        try checkGradients(
            Linear(inputSize: 5, outputSize: 3, generator: &generator), inputShape: [4, 5], seed: 1)
        try checkGradients(
            // batch 1, 1 class
            Linear(inputSize: 9, outputSize: 1, generator: &generator), inputShape: [1, 9], seed: 2)
        try checkGradients(
            Linear(inputSize: 17, outputSize: 11, generator: &generator), inputShape: [3, 17],
            seed: 3)
    }

    /// A bias gradient over more rows than one partial sum holds (three blocks, the last short)
    /// and a width that leaves a tail of lanes, against the sum in Double; with beta 0 the old
    /// target is ignored, with beta 0.9 scaled.
    func testColumnSumsOverSeveralBlocks() {
        let (rows, columns) = (2 * columnSumBlock + 37, 13)
        let matrix = fixtureValues(rows * columns, seed: 11, scale: 1)
        let old = fixtureValues(columns, seed: 12, scale: 1)
        for beta: Float in [0, 0.9] {
            var target = old
            matrix.withUnsafeBufferPointer { m in
                addColumnSums(
                    of: m.baseAddress!, rows: rows, columns: columns, to: &target, beta: beta)
            }
            let expected = (0..<columns).map { j in
                Double(beta) * Double(old[j])
                    + (0..<rows).reduce(0.0) { $0 + Double(matrix[$1 * columns + j]) }
            }
            assertClose(target, expected, rtol: 1e-5, atol: 1e-4)
        }
    }

    /// A dense layer over enough rows to run in blocks of `denseRowBlock` on the workers (two and
    /// a short one) against sums in Double: the output with its bias (and with a residual added),
    /// and after two backward passes (the second adding to the first) the weight, bias and input
    /// gradients; the bias gradient is bit for bit `addColumnSums`'s, blocks and order included.
    func testLinearInRowBlocksAgainstDouble() {
        let (rows, inputs, outputs) = (2 * denseRowBlock + 37, 7, 13)
        XCTAssertTrue(splitsIntoRowBlocks(rows) || processorCount == 1)
        var generator = SeededGenerator(seed: 21)
        let layer = Linear(inputSize: inputs, outputSize: outputs, generator: &generator)
        let bias = fixtureValues(outputs, seed: 22, scale: 1)
        for j in 0..<outputs { layer.bias.value[j] = bias[j] }
        let x = Tensor(shape: [rows, inputs], values: fixtureValues(rows * inputs, seed: 23))
        let dy = Tensor(shape: [rows, outputs], values: fixtureValues(rows * outputs, seed: 24))
        let w = layer.weight.value.values
        let y = layer.forward(x, mode: .training).values
        let expectedY = (0..<(rows * outputs)).map { index in
            let (r, o) = (index / outputs, index % outputs)
            return (0..<inputs).reduce(Double(bias[o])) {
                $0 + Double(x[r * inputs + $1]) * Double(w[o * inputs + $1])
            }
        }
        assertClose(y, expectedY, rtol: 1e-5, atol: 1e-5)
        // A residual added as the bias is laid down.
        let residual = Tensor(
            shape: [rows, outputs], values: fixtureValues(rows * outputs, seed: 25, scale: 3))
        let sum = layer.forward(x, mode: .training, adding: residual).values
        assertClose(
            sum, zip(expectedY, residual.values).map { $0 + Double($1) }, rtol: 1e-5, atol: 1e-5)
        layer.weight.zeroGradient()
        layer.bias.zeroGradient()
        _ = layer.backward(dy)
        let dx = layer.backward(dy).values
        let expectedDW = (0..<(outputs * inputs)).map { index in
            let (o, i) = (index / inputs, index % inputs)
            return 2
                * (0..<rows).reduce(0.0) {
                    $0 + Double(dy[$1 * outputs + o]) * Double(x[$1 * inputs + i])
                }
        }
        let expectedDX = (0..<(rows * inputs)).map { index in
            let (r, i) = (index / inputs, index % inputs)
            return (0..<outputs).reduce(0.0) {
                $0 + Double(dy[r * outputs + $1]) * Double(w[$1 * inputs + i])
            }
        }
        assertClose(layer.weight.gradient!.values, expectedDW, rtol: 1e-5, atol: 1e-4)
        assertClose(dx, expectedDX, rtol: 1e-5, atol: 1e-5)
        var sums = [Float](repeating: 0, count: outputs)
        dy.values.withUnsafeBufferPointer { d in
            addColumnSums(of: d.baseAddress!, rows: rows, columns: outputs, to: &sums, beta: 0)
        }
        XCTAssertEqual(layer.bias.gradient!.values, sums.map { $0 + $0 })
    }

    func testReLU() throws {
        // Inputs drawn away from 0 (the kink) by the fixture: |x| >= 0.05 is checked here.
        // Central differences are exact only away from the kink at 0: the fixture keeps clear of it.
        XCTAssertTrue(fixtureValues(40, seed: 5).allSatisfy { abs($0) > 1e-2 })
        try checkGradients(ReLU(), inputShape: [4, 10], seed: 5)
    }

    func testDropoutWithFixedMask() throws {
        let dropout = Dropout(probability: 0.4, generator: SeededGenerator(seed: 9))
        let saved = dropout.generator
        try checkGradients(
            dropout, inputShape: [3, 13], seed: 6, prepare: { dropout.generator = saved })
    }

    /// ReLU on 300,007 elements (eight-lane groups split across cores, and a tail) with NaN, -0 and
    /// infinities: forward is `x < 0 ? 0 : x` bit for bit (NaN kept, as PyTorch's `relu`), backward
    /// zeroes the gradient where the output is <= 0 and passes it elsewhere, NaN included (PyTorch's
    /// `threshold_backward`), in both the eight-lane path and the tail.
    func testReLUElementwiseAgainstDefinition() {
        let n = 300_007
        let special: [Float] = [
            .nan, -0.0, 0, .infinity, -.infinity, -1, 1, .leastNonzeroMagnitude,
        ]
        let x = Tensor(
            shape: [n],
            values: (0..<n).map { $0 % 11 < special.count ? special[$0 % 11] : Float($0 % 7) - 3 })
        let relu = ReLU()
        let y = relu.forward(x, mode: .training)
        let dy = Tensor(shape: [n], values: (0..<n).map { Float($0 % 5) + 1 })
        let dx = relu.backward(dy)
        for i in 0..<n {
            let expected: Float = x[i] < 0 ? 0 : x[i]
            XCTAssertEqual(
                y[i].bitPattern, expected.bitPattern, "forward, element \(i) (x = \(x[i]))")
            XCTAssertEqual(dx[i], y[i] <= 0 ? 0 : dy[i], "backward, element \(i) (x = \(x[i]))")
        }
    }

    /// Dropout in training keeps about `1 - p` of 100,003 elements (binomial: within 0.006, over
    /// four standard deviations), scales each kept one by exactly `1 / (1 - p)`, draws the same mask
    /// from the same seed, and is the identity in inference.
    func testDropoutMaskStatistics() {
        let n = 100_003
        let p: Float = 0.3
        let x = Tensor(shape: [n], values: (0..<n).map { Float($0 % 9) + 1 })
        let first = Dropout(probability: p, generator: SeededGenerator(seed: 4))
        let y = first.forward(x, mode: .training).values
        let kept = (0..<n).filter { y[$0] != 0 }
        XCTAssertEqual(Double(kept.count) / Double(n), 0.7, accuracy: 0.006)
        for i in kept { XCTAssertEqual(y[i], x[i] * (1 / (1 - p)), "element \(i)") }
        let again = Dropout(probability: p, generator: SeededGenerator(seed: 4)).forward(
            x, mode: .training
        ).values
        XCTAssertEqual(again, y)
        XCTAssertEqual(first.forward(x, mode: .inference).values, x.values)
    }

    func testFlatten() throws {
        try checkGradients(Flatten(), inputShape: [2, 3, 2, 2], seed: 7)
    }

    func testConv2DOddShapes() throws {
        // Non-square image, padding 1, stride 1; batch 1; stride 2 with padding 2; 1x1 kernel.
        try checkGradients(
            Conv2D(
                inputChannels: 2, outputChannels: 3, kernelSize: (3, 3), padding: 1,
                generator: &generator),
            inputShape: [2, 2, 5, 4], seed: 8)
        try checkGradients(
            Conv2D(
                inputChannels: 1, outputChannels: 2, kernelSize: (3, 2), padding: 0,
                generator: &generator),
            inputShape: [1, 1, 4, 6], seed: 9)
        try checkGradients(
            Conv2D(
                inputChannels: 2, outputChannels: 2, kernelSize: (3, 3), stride: 2, padding: 2,
                generator: &generator),
            inputShape: [2, 2, 5, 7], seed: 10)
        try checkGradients(
            Conv2D(inputChannels: 3, outputChannels: 2, kernelSize: (1, 1), generator: &generator),
            inputShape: [2, 3, 3, 2], seed: 11)
        // Same-size outputs (stride 1, 2 padding = kernel - 1) take the shifted-copy path: a 5x5
        // kernel with padding 2 on rows of 11 (a full vector and a tail), 4 rows (every kernel row
        // reaches past an edge).
        try checkGradients(
            Conv2D(
                inputChannels: 2, outputChannels: 2, kernelSize: (5, 5), padding: 2,
                generator: &generator),
            inputShape: [2, 2, 4, 11], seed: 15)
    }

    func testMaxPool2D() throws {
        // Distinct inputs (no ties) from the fixture; 2x2 stride 2 on an odd size (edge dropped),
        // and an overlapping 3x3 stride 2 window.
        try checkGradients(MaxPool2D(kernel: 2), inputShape: [2, 2, 5, 4], seed: 12)
        try checkGradients(MaxPool2D(kernel: 3, stride: 2), inputShape: [1, 2, 7, 5], seed: 13)
    }

    func testSequentialCNN() throws {
        let spec = try ArchitectureSpec(parsing: "cnn:3,4/fc:5")
        let net = try spec.build(
            inputShape: [1, 8, 6], classes: 3, dropout: 0, generator: &generator)
        try checkGradients(net, inputShape: [2, 1, 8, 6], seed: 14)
    }

    /// The first layer of a model does not compute the input gradient (nothing needs it).
    func testModelSkipsInputGradient() throws {
        let model = try Model(
            spec: ArchitectureSpec(parsing: "mlp:4"), inputShape: [3], classes: 2,
            generator: &generator)
        XCTAssertFalse(model.network.layers[0].computesInputGradient)
        XCTAssertTrue(model.network.layers[1].computesInputGradient)
    }
}

final class ConvolutionReferenceTests: XCTestCase {
    /// Conv2D's forward pass against a direct six-loop convolution in Double.
    func testForwardMatchesNaiveConvolution() throws {
        var generator = SeededGenerator(seed: 3)
        for (stride, padding, kh, kw) in [
            (1, 1, 3, 3), (2, 0, 3, 2), (2, 2, 5, 3), (1, 0, 1, 1), (1, 2, 5, 5), (1, 3, 7, 7),
        ] {
            let conv = Conv2D(
                inputChannels: 3, outputChannels: 4, kernelSize: (kh, kw), stride: stride,
                padding: padding, generator: &generator)
            for c in 0..<4 { conv.bias.value[c] = Float(c) * 0.1 - 0.15 }
            let (n, cin, h, w) = (2, 3, 7, 6)
            let x = Tensor(shape: [n, cin, h, w], values: fixtureValues(n * cin * h * w, seed: 21))
            let y = conv.forward(x, mode: .inference)
            let ho = (h + 2 * padding - kh) / stride + 1
            let wo = (w + 2 * padding - kw) / stride + 1
            XCTAssertEqual(y.shape, [n, 4, ho, wo])
            var expected: [Double] = []
            for b in 0..<n {
                for co in 0..<4 {
                    for oy in 0..<ho {
                        for ox in 0..<wo {
                            var acc = Double(conv.bias.value[co])
                            for ci in 0..<cin {
                                for i in 0..<kh {
                                    for j in 0..<kw {
                                        let yy = oy * stride - padding + i
                                        let xx = ox * stride - padding + j
                                        guard yy >= 0, yy < h, xx >= 0, xx < w else { continue }
                                        acc +=
                                            Double(x[((b * cin + ci) * h + yy) * w + xx])
                                            * Double(
                                                conv.weight.value[
                                                    ((co * cin + ci) * kh + i) * kw + j])
                                    }
                                }
                            }
                            expected.append(acc)
                        }
                    }
                }
            }
            assertClose(
                y.values, expected, rtol: 1e-5, atol: 1e-5,
                "stride \(stride) padding \(padding) kernel \(kh)x\(kw)")
        }
    }
}

final class MaxPoolReferenceTests: XCTestCase {
    /// 2x2 pooling with many ties (small integers): values and the routing of gradients to the
    /// first maximum in row-major order, against a direct loop. Rows of 20 and 37 columns (full
    /// groups of 8 outputs plus tails); the CNN's 28 and 14 (a tail that reads into the next row,
    /// and rows shorter than a group), with an odd height whose last row is dropped; 6 columns (a
    /// group's stores reach two rows down); 2x2.
    func testVectorPathAndTiesAgainstDirectLoop() {
        for (h, w) in [(6, 20), (5, 37), (6, 28), (7, 14), (8, 6), (5, 6), (2, 2)] {
            let (n, c) = (2, 3)
            var generator = SeededGenerator(seed: UInt64(w))
            let x = Tensor(
                shape: [n, c, h, w],
                values: (0..<(n * c * h * w)).map { _ in Float(generator.next() % 3) })
            let pool = MaxPool2D(kernel: 2)
            let y = pool.forward(x, mode: .training)
            let (ho, wo) = (h / 2, w / 2)
            let dy = Tensor(shape: y.shape, values: (0..<y.count).map { Float($0 + 1) })
            let dx = pool.backward(dy).values
            var expectedY: [Float] = []
            var expectedDX = [Float](repeating: 0, count: x.count)
            for plane in 0..<(n * c) {
                for oy in 0..<ho {
                    for ox in 0..<wo {
                        var best = plane * h * w + 2 * oy * w + 2 * ox
                        for (i, j) in [(0, 1), (1, 0), (1, 1)] {
                            let k = plane * h * w + (2 * oy + i) * w + 2 * ox + j
                            if x[k] > x[best] { best = k }
                        }
                        expectedY.append(x[best])
                        expectedDX[best] += dy[(plane * ho + oy) * wo + ox]
                    }
                }
            }
            XCTAssertEqual(y.values, expectedY, "\(h)x\(w)")
            XCTAssertEqual(dx, expectedDX, "\(h)x\(w)")
        }
    }
}

final class ConvolutionChunkTests: XCTestCase {
    /// A chunk's columns or products, whichever is larger, stay within `chunkBytes` (4 MB): the CNN
    /// teacher's first layer (K = 9 < Cout = 32, P = 784) takes 41 images per chunk, not the whole
    /// batch its columns alone would allow; its second (K = 288 > Cout = 64, P = 196) 18.
    func testChunksAreSizedByTheLargerOfColumnsAndProducts() {
        var generator = SeededGenerator(seed: 3)
        let first = Conv2D(
            inputChannels: 1, outputChannels: 32, kernelSize: (3, 3), padding: 1,
            generator: &generator)
        let second = Conv2D(
            inputChannels: 32, outputChannels: 64, kernelSize: (3, 3), padding: 1,
            generator: &generator)
        _ = first.forward(Tensor(zeros: [128, 1, 28, 28]), mode: .inference)
        _ = second.forward(Tensor(zeros: [128, 32, 14, 14]), mode: .inference)
        XCTAssertEqual(first.chunkImages, 41)  // 4 MB / (32 x 784 x 4 bytes) = 41.8
        XCTAssertEqual(second.chunkImages, 18)  // 4 MB / (288 x 196 x 4 bytes) = 18.6
    }

    /// A training forward pass keeps the whole batch's columns when they fit in 64 MB (the CNN
    /// teacher's second layer: 29 MB at batch 128, 58 MB at 256, not 116 MB at 512); inference
    /// never keeps them.
    func testColumnsAreKeptWithinTheirBudgetInTraining() {
        var generator = SeededGenerator(seed: 3)
        let second = Conv2D(
            inputChannels: 32, outputChannels: 64, kernelSize: (3, 3), padding: 1,
            generator: &generator)
        for (batch, kept) in [(128, true), (256, true), (512, false)] {
            _ = second.forward(Tensor(zeros: [batch, 32, 14, 14]), mode: .training)
            XCTAssertEqual(second.keptColumns, kept, "batch \(batch)")
        }
        _ = second.forward(Tensor(zeros: [128, 32, 14, 14]), mode: .inference)
        XCTAssertFalse(second.keptColumns)
    }

    /// Splitting the batch into chunks gives the same output and gradients as one chunk, including
    /// a short last chunk (5 images in chunks of 2): with columns larger than products (Cin 2,
    /// Cout 3) and with products larger (Cin 1, Cout 16, as a first layer, where the products set
    /// the chunk). Columns kept from the forward pass and columns unfolded again in the backward
    /// pass give the same gradients bit for bit.
    func testChunkedEqualsSingleChunk() {
        for (cin, cout) in [(2, 3), (1, 16)] {
            func make() -> Conv2D {
                var generator = SeededGenerator(seed: 8)
                return Conv2D(
                    inputChannels: cin, outputChannels: cout, kernelSize: (3, 3), stride: 1,
                    padding: 1, generator: &generator)
            }
            let single = make()
            let chunked = make()
            let unfoldedAgain = make()
            for layer in [chunked, unfoldedAgain] {
                layer.chunkBytes = 2 * max(9 * cin, cout) * 30 * 4
            }  // P = 30: two images per chunk
            unfoldedAgain.keptColumnsBytes = 0
            let x = Tensor(shape: [5, cin, 6, 5], values: fixtureValues(150 * cin, seed: 4))
            let dy = Tensor(shape: [5, cout, 6, 5], values: fixtureValues(150 * cout, seed: 5))
            var results: [[[Float]]] = []
            for layer in [single, chunked, unfoldedAgain] {
                for p in layer.parameters { p.zeroGradient() }
                let y = layer.forward(x, mode: .training).values
                let dx = layer.backward(dy).values
                results.append([y, dx, layer.weight.gradient!.values, layer.bias.gradient!.values])
            }
            XCTAssertEqual([single, chunked, unfoldedAgain].map(\.chunkImages), [5, 2, 2])
            XCTAssertEqual(
                [single, chunked, unfoldedAgain].map(\.keptColumns), [true, true, false])
            for (k, name) in ["output", "input gradient", "weight gradient", "bias gradient"]
                .enumerated()
            {
                assertClose(
                    results[1][k], results[0][k], rtol: 1e-5, atol: 1e-5,
                    "Cin \(cin), Cout \(cout): \(name)")
                assertIdentical(
                    results[2][k], results[1][k],
                    "Cin \(cin), Cout \(cout): \(name), unfolded again")
            }
        }
        var generator = SeededGenerator(seed: 8)
        let chunked = Conv2D(
            inputChannels: 2, outputChannels: 3, kernelSize: (3, 3), stride: 1, padding: 1,
            generator: &generator)
        chunked.chunkBytes = 2 * 18 * 30 * 4
        // And the chunked layer passes the finite-difference check on its own.
        XCTAssertNoThrow(try checkGradients(chunked, inputShape: [5, 2, 6, 5], seed: 30))
    }
}

final class ChannelMajorTests: XCTestCase {
    /// `Sequential` hands activations over channel-major from a convolution to the next
    /// convolution or `Flatten` through pooling and ReLU, and nowhere else.
    func testSequentialPlansChannelMajorRuns() throws {
        var generator = SeededGenerator(seed: 1)
        let cnn = try ArchitectureSpec(parsing: "cnn:3,4/fc:5").build(
            inputShape: [1, 8, 6], classes: 3, dropout: 0.5,
            generator: &generator)
        // conv, pool, relu, conv, pool, relu, flatten, dropout, linear, relu, linear
        let cm = ActivationLayout(inputIsChannelMajor: true, outputIsChannelMajor: true)
        XCTAssertEqual(
            cnn.layouts,
            [
                ActivationLayout(outputIsChannelMajor: true), .nchw, .nchw, cm, .nchw, .nchw,
                ActivationLayout(inputIsChannelMajor: true), .nchw, .nchw, .nchw, .nchw,
            ])

        func conv() -> Conv2D {
            Conv2D(
                inputChannels: 2, outputChannels: 2, kernelSize: (3, 3), padding: 1,
                generator: &generator)
        }
        // Dropout breaks a run (its mask follows memory order); a run must end inside the network.
        let a = conv()
        let b = conv()
        let c = conv()
        let first = Sequential([
            a, Dropout(probability: 0.5, generator: SeededGenerator(seed: 2)), b, ReLU(), c,
            MaxPool2D(kernel: 2),
        ])
        XCTAssertEqual(
            first.layouts,
            [
                .nchw, .nchw, ActivationLayout(outputIsChannelMajor: true), .nchw,
                ActivationLayout(inputIsChannelMajor: true), .nchw,
            ])
        // Each Sequential has its own plan: the same layers regrouped hand over in NCHW here, and the
        // first network still computes what it computed before.
        let x = Tensor(shape: [2, 2, 4, 4], values: fixtureValues(64, seed: 5))
        let before = first.forward(x, mode: .inference).values
        let second = Sequential([
            b, Dropout(probability: 0.5, generator: SeededGenerator(seed: 3)), c,
        ])
        XCTAssertEqual(second.layouts, [.nchw, .nchw, .nchw])
        _ = second.forward(x, mode: .inference)
        assertIdentical(first.forward(x, mode: .inference).values, before)
        // A layer called on its own is NCHW both ways, whatever Sequential holds it.
        let alone = c.forward(x, mode: .inference).values
        assertIdentical(
            Sequential([c], channelMajor: false).forward(x, mode: .inference).values, alone)
    }

    /// The CNN teacher's architecture, a small one with odd sizes and one image per chunk (the
    /// outputs of later chunks start inside the tensor; columns kept, and unfolded again from the
    /// channel-major input in the backward pass), and one with a stride-2 and a
    /// non-square unpadded convolution (the general unfolding paths) give the same logits and
    /// gradients, bit for bit, with channel-major hand-overs as with NCHW throughout (whose
    /// columns are always kept).
    func testChannelMajorEqualsImageMajor() throws {
        func spec(_ text: String, _ shape: [Int]) -> (inout SeededGenerator) throws -> Sequential {
            {
                try ArchitectureSpec(parsing: text).build(
                    inputShape: shape, classes: 10, generator: &$0)
            }
        }
        let strided: (inout SeededGenerator) throws -> Sequential = { g in
            Sequential([
                Conv2D(
                    inputChannels: 2, outputChannels: 3, kernelSize: (3, 3), stride: 2, padding: 1,
                    generator: &g),
                ReLU(),
                Conv2D(inputChannels: 3, outputChannels: 4, kernelSize: (3, 2), generator: &g),
                MaxPool2D(kernel: 2), Flatten(),
                Linear(inputSize: 4, outputSize: 10, generator: &g),
            ])
        }
        // (chunk bytes, kept-columns bytes): 1 byte makes one image per chunk; 0 unfolds the
        // channel-major net's columns again in the backward pass, from its channel-major input.
        let cases:
            [(
                name: String, build: (inout SeededGenerator) throws -> Sequential, input: [Int],
                bytes: (chunk: Int, kept: Int)?
            )] = [
                ("cnn:32,64/fc:256", spec("cnn:32,64/fc:256", [1, 28, 28]), [3, 1, 28, 28], nil),
                ("cnn:3,4/fc:5", spec("cnn:3,4/fc:5", [2, 9, 7]), [5, 2, 9, 7], (1, 64 << 20)),
                (
                    "cnn:3,4/fc:5, unfolded again", spec("cnn:3,4/fc:5", [2, 9, 7]), [5, 2, 9, 7],
                    (1, 0)
                ),
                ("stride 2", strided, [3, 2, 9, 7], nil),
            ]
        for c in cases {
            var g1 = SeededGenerator(seed: 7)
            var g2 = SeededGenerator(seed: 7)
            let channelMajor = try c.build(&g1)
            let imageMajor = Sequential(try c.build(&g2).layers, channelMajor: false)
            XCTAssertTrue(channelMajor.layouts.contains { $0.inputIsChannelMajor }, c.name)
            if let bytes = c.bytes {  // the NCHW reference keeps its columns
                for case let conv as Conv2D in imageMajor.layers { conv.chunkBytes = bytes.chunk }
                for case let conv as Conv2D in channelMajor.layers {
                    conv.chunkBytes = bytes.chunk
                    conv.keptColumnsBytes = bytes.kept
                }
            }
            let x = Tensor(
                shape: c.input, values: fixtureValues(c.input.reduce(1, *), seed: 3, scale: 1))
            var outputs: [[Float]] = []
            var gradients: [[[Float]]] = []
            for net in [channelMajor, imageMajor] {
                net.computesInputGradient = true
                for p in net.parameters { p.zeroGradient() }
                let y = net.forward(x, mode: .training)
                outputs.append(y.values)
                let dy = Tensor(shape: y.shape, values: fixtureValues(y.count, seed: 4, scale: 1))
                let dx = net.backward(dy).values
                gradients.append([dx] + net.parameters.map(\.gradient!.values))
            }
            assertIdentical(outputs[0], outputs[1], c.name)
            XCTAssertEqual(gradients[0].count, gradients[1].count)
            for (k, (a, b)) in zip(gradients[0], gradients[1]).enumerated() {
                assertIdentical(a, b, "\(c.name): gradient \(k) (0 is the input's)")
            }
        }
    }
}
