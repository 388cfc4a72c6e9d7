import ArgumentParser
import DistillKit
import Foundation

/// `distill import-torch`: a PyTorch state dict (safetensors) becomes a distill model.
struct ImportTorch: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "import-torch",
        abstract:
            "Turn a PyTorch MLP, CNN or transformer saved with safetensors.torch.save_file(model.state_dict()) into a distill model.",
        discussion: """
            The state dict's weight/bias pairs are matched, in the order of their module names (net.2 \
            before net.10), to the layers with weights of --arch, and every shape is checked. nn.Linear \
            maps to our dense layers and nn.Conv2d (3x3, padding 1) to our convolutions; ReLU, max-pooling, \
            flattening and dropout have no weights and must sit where --arch puts them (a CNN block is \
            conv, 2x2 max-pool, ReLU: the same function as conv, ReLU, max-pool). The model takes raw \
            inputs and normalises them with --normalization, which must be what the PyTorch model was \
            trained on (transforms.ToTensor() is divisor=255,mean=0,std=1).
            A transformer (--arch transformer:...) is matched by name: tokens.weight (or tok, wte, \
            transformer.wte), positions.weight (pos, wpe; its first `context` rows), and per block i \
            blocks.i. (or h.i., transformer.h.i.) followed by ln_1 (ln1), attn (att; \
            nn.MultiheadAttention's in_proj_weight, in_proj_bias, out_proj), ln_2 (ln2), mlp.c_fc \
            (mlp.0) and mlp.c_proj (mlp.2), then ln (ln_f, transformer.ln_f) and head (lm_head; a \
            missing bias is zero). Other tensors, such as a causal-mask buffer, are ignored; \
            --input-shape and --normalization do not apply.
            """)

    @Option(help: "The state dict (.safetensors).") var stateDict: String
    @Option(
        help: ArgumentHelp(
            "Architecture: mlp[:H1,H2,...], cnn:C1,C2,...[/fc:H1,...] or transformer:layers=L,dim=D,heads=H,context=N[,mlp=M][,tied].",
            valueName: "spec"))
    var arch: String
    @Option(
        help: ArgumentHelp(
            "The shape of one input example, e.g. 1,28,28 (an image) or 784.", valueName: "shape"))
    var inputShape: String = "1,28,28"
    @Option(
        help: ArgumentHelp(
            "Input normalisation (raw / divisor - mean) / std.", valueName: "divisor=D,mean=M,std=S"
        ))
    var normalization: String = "divisor=255,mean=0,std=1"
    @Option(help: "Where to write the model (.safetensors).") var out: String

    var shape: [Int] {
        inputShape.split(separator: ",").compactMap { Int($0.trimmingCharacters(in: .whitespaces)) }
    }

    func validate() throws {
        _ = try ArchitectureSpec(parsing: arch)
        let parts = inputShape.split(separator: ",", omittingEmptySubsequences: false)
        guard !parts.isEmpty, parts.count == shape.count,
            shape.allSatisfy({ $0 >= 1 && $0 <= 1 << 24 })
        else {
            throw ValidationError(
                "--input-shape takes positive whole numbers, comma-separated, got '\(inputShape)'")
        }
        guard let n = InputNormalization(parsing: normalization), n.divisor != 0, n.std != 0 else {
            throw ValidationError(
                "--normalization takes divisor=D,mean=M,std=S with D and S non-zero, got '\(normalization)'"
            )
        }
        guard FileManager.default.fileExists(atPath: stateDict) else {
            throw ValidationError("\(stateDict): no such file")
        }
        try checkOutputPath(out)
    }

    func run() throws {
        let model = try TorchImport.model(
            stateDict: stateDict, spec: try ArchitectureSpec(parsing: arch), inputShape: shape,
            normalization: InputNormalization(parsing: normalization)!)
        try model.save(to: out)
        printError(
            "wrote \(out): \(model.architecture), input \(model.inputShape), \(model.classes) classes, \(model.parameterCount) parameters"
        )
    }
}
