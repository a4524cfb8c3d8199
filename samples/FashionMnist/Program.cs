// Trains the reference CNN on Fashion-MNIST and reports test accuracy, per-class precision/recall/F1 and the
// confusion matrix. By default it uses the 6,000/1,000-image subset embedded in the repository; --data DIR trains on
// a full copy (e.g. /usr/share/datasets/fashion-mnist from Debian's dataset-fashion-mnist).
//
//   dotnet run -c Release --project samples/FashionMnist [-- --epochs 10 --data DIR --arch reference-cnn]
using System.Diagnostics;
using Ml.Cnn.Backends.Cpu;
using Ml.Cnn.Data;
using Ml.Cnn.Networks;
using Ml.Cnn.Training;
using Ml.Cnn.Zoo;

var options = ParseArguments(args);
string dataFolder = options.GetValueOrDefault("data") ?? Path.Combine(AppContext.BaseDirectory, "data", "fashion-mnist-subset");
int epochs = int.Parse(options.GetValueOrDefault("epochs") ?? "10");
string architecture = options.GetValueOrDefault("arch") ?? "reference-cnn";

var train = Idx.LoadFromFolder(dataFolder, "train");
var test = Idx.LoadFromFolder(dataFolder, "t10k");
Console.WriteLine($"Fashion-MNIST from {dataFolder}: {train.Count} training and {test.Count} test images");

var backend = new CpuBackend();
var network = Network.Create(ModelZoo.Get(architecture, 10), backend, train.ItemShape, seed: 1);
Console.WriteLine(network.Summary());

var clock = Stopwatch.StartNew();
var result = Trainer.Train(network, train, new TrainerOptions
{
    Epochs = epochs,
    BatchSize = 64,
    Optimizer = OptimizerKind.Sgd,
    LearningRate = 0.01f,
    Momentum = 0.9f,
    ValidationFraction = 0.1f,
    Seed = 1,
    Progress = new ConsoleProgress(),
});
Console.WriteLine();
Console.WriteLine($"Trained {result.History.Count} epochs in {clock.Elapsed.TotalSeconds:F1} s on {backend.Name}; best validation epoch {result.BestEpoch}");

var loss = Trainer.CreateLoss(LossKind.SoftmaxCrossEntropy);
var (testLoss, testAccuracy) = Trainer.Evaluate(network, test, loss, result.Normalization);
Console.WriteLine($"Test accuracy {testAccuracy:P2}, log-loss {testLoss:F4}");
PrintConfusion(Trainer.Predict(network, test, result.Normalization), test);

static void PrintConfusion(float[] scores, ImageDataset test)
{
    int classes = Idx.FashionMnistClasses.Count;
    var confusion = new int[classes, classes];
    for (int i = 0; i < test.Count; i++)
    {
        int predicted = 0;
        for (int c = 1; c < classes; c++) if (scores[i * classes + c] > scores[i * classes + predicted]) predicted = c;
        confusion[(int)test.Targets[i], predicted]++;
    }
    Console.WriteLine();
    Console.WriteLine($"{"class",-12} {"precision",9} {"recall",7} {"F1",6}");
    for (int c = 0; c < classes; c++)
    {
        int truePositives = confusion[c, c];
        int predictedCount = Enumerable.Range(0, classes).Sum(r => confusion[r, c]);
        int actualCount = Enumerable.Range(0, classes).Sum(p => confusion[c, p]);
        double precision = predictedCount == 0 ? 0 : (double)truePositives / predictedCount;
        double recall = actualCount == 0 ? 0 : (double)truePositives / actualCount;
        double f1 = precision + recall == 0 ? 0 : 2 * precision * recall / (precision + recall);
        Console.WriteLine($"{Idx.FashionMnistClasses[c],-12} {precision,9:F3} {recall,7:F3} {f1,6:F3}");
    }
    Console.WriteLine();
    Console.WriteLine("Confusion matrix (rows: true class, columns: predicted)");
    Console.WriteLine(new string(' ', 12) + string.Concat(Enumerable.Range(0, classes).Select(c => $"{c,5}")));
    for (int r = 0; r < classes; r++)
        Console.WriteLine($"{r} {Idx.FashionMnistClasses[r],-10}" + string.Concat(Enumerable.Range(0, classes).Select(c => $"{confusion[r, c],5}")));
}

static Dictionary<string, string> ParseArguments(string[] args)
{
    var result = new Dictionary<string, string>();
    for (int i = 0; i < args.Length; i++)
    {
        if (!args[i].StartsWith("--") || i + 1 >= args.Length)
            throw new ArgumentException($"Expected '--name value' pairs (--data DIR, --epochs N, --arch NAME), got '{args[i]}'.");
        result[args[i][2..]] = args[++i];
    }
    return result;
}

/// <summary>One console line per batch, rewritten in place; a permanent line per epoch.</summary>
sealed class ConsoleProgress : IProgress<TrainingProgress>
{
    public void Report(TrainingProgress p)
    {
        if (p.EpochEnd)
            Console.WriteLine($"\repoch {p.Epoch}/{p.Epochs}  loss {p.Loss:F4}  accuracy {p.Accuracy:P1}  validation loss {p.ValidationLoss:F4}  validation accuracy {p.ValidationAccuracy:P1}  {p.ImagesPerSecond:F0} img/s");
        else if (p.Batch % 10 == 0)
            Console.Write($"\repoch {p.Epoch}/{p.Epochs}  batch {p.Batch}/{p.Batches}  loss {p.Loss:F4}  lr {p.LearningRate:G3}  {p.ImagesPerSecond:F0} img/s  ETA {p.Remaining:mm\\:ss}   ");
    }
}
