using System.Diagnostics;
using System.Text.Json;
using Ml.Cnn.Data;
using Ml.Cnn.Neighbors;

namespace Ml.Cnn.Bench;

/// <summary>
/// Full Fashion-MNIST KNN (10,000 queries × 60,000 references, pixels as floats 0–255, 2 threads) against
/// scikit-learn's brute-force predictions and timings recorded on this machine kind (eng/fixtures/sklearn).
/// </summary>
internal static class KnnBenchmark
{
    public static void Run(double peakPerCore, string dataFolder)
    {
        var train = Idx.LoadFromFolder(dataFolder, "train", scale: 1f);
        var test = Idx.LoadFromFolder(dataFolder, "t10k", scale: 1f);
        float[] trainFeatures = Flatten(train), testFeatures = Flatten(test);
        string fixtures = Path.Combine(AppContext.BaseDirectory, "fixtures", "sklearn");
        using var summary = JsonDocument.Parse(File.ReadAllText(Path.Combine(fixtures, "knn_summary.json")));
        Console.WriteLine($"KNN on Fashion-MNIST: {train.Count} references, {test.Count} queries, 2 threads; peer: {summary.RootElement.GetProperty("generator").GetString()}");
        Console.WriteLine($"L1 kernel: {(KnnSearch.PreparedReferences.Create(trainFeatures, train.Count, 784, KnnDistance.Manhattan).Bytes is null
            ? "floats" : $"bytes (8-bit pixels), {ByteGrid.Kernel}")}; CPU: {Ml.Cnn.Backends.Cpu.CpuIsa.Describe()}");
        Console.WriteLine($"{"setting",-22} {"seconds",8} {"sklearn s",10} {"speed-up",9} {"accuracy",9} {"sklearn",8} {"same predictions",17}");
        foreach (var result in summary.RootElement.GetProperty("results").EnumerateArray())
        {
            string name = result.GetProperty("name").GetString()!;
            int k = result.GetProperty("k").GetInt32();
            var distance = result.GetProperty("metric").GetString() == "l1" ? KnnDistance.Manhattan : KnnDistance.Euclidean;
            var weighting = result.GetProperty("weights").GetString() == "distance" ? KnnWeighting.InverseDistance : KnnWeighting.Uniform;
            var classifier = new KnnClassifier(trainFeatures, train.Targets, 784, 10, k, distance, weighting, threads: 2);
            var clock = Stopwatch.StartNew();
            var scores = classifier.Score(testFeatures, test.Count);
            double seconds = clock.Elapsed.TotalSeconds;
            var expected = File.ReadAllBytes(Path.Combine(fixtures, name + ".u8"));
            int same = 0, correct = 0;
            for (int q = 0; q < test.Count; q++)
            {
                int predicted = Ml.Cnn.Core.Scores.ArgMax(scores.AsSpan(q * 10, 10));
                if (predicted == expected[q]) same++;
                if (predicted == (int)test.Targets[q]) correct++;
            }
            double theirs = result.GetProperty("predict_seconds_2_threads").GetDouble();
            Console.WriteLine($"{name,-22} {seconds,8:F2} {theirs,10:F1} {theirs / seconds,8:F1}x {(double)correct / test.Count,9:F4} {result.GetProperty("accuracy").GetDouble(),8:F4} {same,11}/{test.Count}");
            if (distance == KnnDistance.Euclidean && k == 5 && weighting == KnnWeighting.Uniform)
            {
                double flops = 2.0 * train.Count * test.Count * 784;
                Console.WriteLine($"{"",-22} L2 distance GEMM {flops / 1e12:F2} TFLOP: {flops / seconds / 1e9:F0} GFLOP/s overall, {flops / seconds / 1e9 / (2 * peakPerCore):P0} of the 2-core peak; faiss IndexFlatL2 took 7.3 s");
            }
        }
    }

    private static float[] Flatten(ImageDataset data)
    {
        var values = new float[data.Count * data.ItemShape.Length];
        for (int i = 0; i < data.Count; i++) data.CopyItem(i, values.AsSpan(i * data.ItemShape.Length, data.ItemShape.Length));
        return values;
    }
}
