using Ml.Cnn.Bench;

// Usage: dotnet run -c Release --project eng/Ml.Cnn.Bench -- [gemm|layers|all|knn [DIR]|train ARCH EPOCHS [DIR] [--torch-epochs N]|conv [reference-cnn|resnet18]|fuzz [N]|checkpoint-rss [on|off]|sweep asha|sweep workers [TRIALS]|networks [SIZE] [BATCH]|networks segmentation [SIZE] [BATCH]|networks profile NAME [SIZE] [BATCH] [infer]]
string mode = args.Length > 0 ? args[0] : "all";
double peak = Peak.GflopsPerCore();
Console.WriteLine($"CPU: {Environment.ProcessorCount} cores; measured FMA peak {peak:F1} GFLOP/s per core, {peak * Environment.ProcessorCount:F1} in all");
Console.WriteLine($"ISA: {Ml.Cnn.Backends.Cpu.CpuIsa.Describe()}");
Console.WriteLine();
if (mode is "gemm" or "all") GemmBenchmark.Run(peak);
if (mode is "layers" or "all") LayerBenchmark.Run(peak);
if (mode is "conv") ConvProbe.Run(peak, args.Length > 1 ? args[1] : "reference-cnn");
if (mode is "train") TrainingBenchmark.Run(args);
if (mode is "fuzz") FuzzBenchmark.Run(args.Length > 1 ? int.Parse(args[1]) : 220, "samples/data/fashion-mnist-subset");
if (mode is "checkpoint-rss") CheckpointMemoryBenchmark.Run(args.Length < 2 || args[1] != "off", "samples/data/fashion-mnist-subset");
if (mode is "sweep") SweepBenchmark.Run(args);
if (mode is "networks") NetworkBenchmark.Run(args);
if (mode is "knn") KnnBenchmark.Run(peak, args.Length > 1 ? args[1] : "/usr/share/datasets/fashion-mnist");
