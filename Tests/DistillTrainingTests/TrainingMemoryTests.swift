import DistillNN
import XCTest

@testable import DistillTraining

final class TrainingMemoryTests: XCTestCase {
    /// Bytes = 4 x (parameters x (weights, gradients, best weights, optimiser slots) + batch x
    /// (inputs + activations)), the batch no larger than the data.
    func testEstimateCountsParametersOptimiserStateAndTheBatch() throws {
        let spec = try ArchitectureSpec(parsing: "mlp:10")
        let footprint = spec.footprint(inputShape: [4], classes: 3)
        XCTAssertEqual(footprint.parameters, 83)  // 4 x 10 + 10 + 10 x 3 + 3
        // linear and ReLU outputs and logits, 10 + 10 + 3, twice
        XCTAssertEqual(footprint.activationsPerExample, 46)
        var options = TrainingOptions()
        options.batchSize = 100
        let sgd = TrainingMemory(
            spec: spec, inputShape: [4], classes: 3, options: options, examples: 50)
        XCTAssertEqual(sgd.bytes, 11_328)  // 4 x (83 x 4 + 50 x (4 + 46))
        options.optimizer = .adamw
        let adam = TrainingMemory(
            spec: spec, inputShape: [4], classes: 3, options: options, examples: 1000)
        XCTAssertEqual(adam.bytes, 21_660)  // 4 x (83 x 5 + 100 x (4 + 46))
        XCTAssertNoThrow(try adam.check(spec, available: adam.bytes))
        XCTAssertThrowsError(try adam.check(spec, available: adam.bytes - 1)) {
            XCTAssertEqual(
                "\($0)",
                "mlp:10 has 83 parameters: training it needs about 22 KB (weights, gradients, optimiser state, the best weights and a batch's activations), more than this machine's 22 KB of memory"
            )
        }
    }
}
