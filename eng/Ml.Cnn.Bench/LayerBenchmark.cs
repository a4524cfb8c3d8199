namespace Ml.Cnn.Bench; internal static class LayerBenchmark { public static void Run(double peak) { } }
