// The umbrella module: `import DistillKit` brings every Distill module into scope.
@_exported import DistillCore
@_exported import DistillData
@_exported import DistillFormats
@_exported import DistillLosses
@_exported import DistillNN
@_exported import DistillReport
@_exported import DistillTraining
