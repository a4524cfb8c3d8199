using Microsoft.ML;
using Microsoft.ML.Data;
using Ml.Cnn.Data;
using Ml.Cnn.MLNet;
using Ml.Cnn.Training;
using Spectre.Console;

namespace FashionMnist;

/// <summary>Command-line settings of the sample.</summary>
internal sealed record Arguments(string DataFolder, int Epochs, string Architecture, string OutputFolder)
{
    public static string EmbeddedData => Path.Combine(AppContext.BaseDirectory, "data", "fashion-mnist-subset");

    public static Arguments Parse(string[] args)
    {
        var values = new Dictionary<string, string>();
        for (int i = 0; i < args.Length; i++)
        {
            if (!args[i].StartsWith("--") || i + 1 >= args.Length)
                throw new ArgumentException($"Expected '--name value' pairs (--data DIR, --epochs N, --arch NAME, --out DIR), got '{args[i]}'.");
            values[args[i][2..]] = args[++i];
        }
        return new Arguments(values.GetValueOrDefault("data") ?? EmbeddedData, int.Parse(values.GetValueOrDefault("epochs") ?? "10"),
            values.GetValueOrDefault("arch") ?? "reference-cnn", values.GetValueOrDefault("out") ?? "fashion-mnist-output");
    }
}

/// <summary>What a run produced, for the smoke test.</summary>
internal sealed record SampleResult(double Accuracy, double LogLoss, string CurvesPath, string CheckpointPath, string ModelZipPath, double ReloadedAccuracy);

internal static class SampleRun
{
    public static SampleResult Run(Arguments arguments, bool interactive)
    {
        var ml = new MLContext(seed: 1);
        string images(string prefix) => Path.Combine(arguments.DataFolder, $"{prefix}-images-idx3-ubyte.gz");
        string labels(string prefix) => Path.Combine(arguments.DataFolder, $"{prefix}-labels-idx1-ubyte.gz");
        var train = ml.Data.LoadFromIdxFiles(images("train"), labels("train"), classNames: Idx.FashionMnistClasses);
        var test = ml.Data.LoadFromIdxFiles(images("t10k"), labels("t10k"), classNames: Idx.FashionMnistClasses);
        Directory.CreateDirectory(arguments.OutputFolder);
        string checkpoints = Path.Combine(arguments.OutputFolder, "checkpoint");
        if (Directory.Exists(checkpoints)) Directory.Delete(checkpoints, recursive: true); // train afresh, not resume

        var options = new CnnTrainerOptions
        {
            Architecture = arguments.Architecture,
            Epochs = arguments.Epochs,
            BatchSize = 64,
            Optimizer = OptimizerKind.Sgd,
            LearningRate = 0.01f,
            Momentum = 0.9f,
            ValidationFraction = 0.1f,
            CheckpointDirectory = checkpoints,
        };
        var pipeline = ml.Transforms.Conversion.MapValueToKey("Label")
            .Append(ml.MulticlassClassification.Trainers.ConvolutionalNetwork(options))
            .Append(ml.Transforms.Conversion.MapKeyToValue("PredictedLabel"));

        if (!interactive) AnsiConsole.Profile.Width = Math.Max(AnsiConsole.Profile.Width, 130);
        AnsiConsole.MarkupLine($"[bold]Fashion-MNIST[/] from {Markup.Escape(arguments.DataFolder)}: {train.GetColumn<string>("Label").Count()} training and {test.GetColumn<string>("Label").Count()} test images; {arguments.Architecture}, {arguments.Epochs} epochs");
        var clock = System.Diagnostics.Stopwatch.StartNew();
        TransformerChain<Microsoft.ML.Transforms.KeyToValueMappingTransformer> model = null!;
        if (interactive)
            AnsiConsole.Progress().Columns(new TaskDescriptionColumn(), new ProgressBarColumn(), new PercentageColumn(), new RemainingTimeColumn())
                .Start(context =>
                {
                    var task = context.AddTask("training", maxValue: arguments.Epochs);
                    options.Progress = new SpectreProgress(task);
                    model = pipeline.Fit(train);
                });
        else
        {
            options.Progress = new LineProgress();
            model = pipeline.Fit(train);
        }
        var cnn = model.OfType<CnnMulticlassTransformer>().Single();
        var history = cnn.Model.Training!.History;
        AnsiConsole.MarkupLine($"Trained {history.Count} epochs in {clock.Elapsed.TotalSeconds:F1} s; best validation epoch {cnn.Model.Training.BestEpoch}");

        var scored = model.Transform(test);
        var metrics = ml.MulticlassClassification.Evaluate(scored);
        AnsiConsole.MarkupLine($"[bold green]Test accuracy {metrics.MicroAccuracy:P2}[/], log-loss {metrics.LogLoss:F4}");
        // Metrics follow the label keys' order, which MapValueToKey sets by first occurrence: name them from the Score slots.
        var slotNames = default(VBuffer<ReadOnlyMemory<char>>);
        scored.Schema["Score"].GetSlotNames(ref slotNames);
        Report.Print(metrics, slotNames.DenseValues().Select(n => n.ToString()).ToList());
        string curves = Report.PlotCurves(history, arguments.Architecture, Path.Combine(arguments.OutputFolder, "training-curves.png"));
        string checkpoint = cnn.Model.Training.CheckpointPath!;
        AnsiConsole.MarkupLine($"Training curves: {Markup.Escape(curves)}");
        AnsiConsole.MarkupLine($"Trained weights (Ml.Cnn checkpoint, resumable): {Markup.Escape(checkpoint)}");

        // The fitted pipeline as an ordinary ML.NET model zip (the network travels inside as ONNX): it loads with
        // mlContext.Model.Load in a program that does not reference Ml.Cnn and scores with ONNX Runtime.
        string zip = Path.Combine(arguments.OutputFolder, "model.zip");
        ml.Model.SaveAtomically(model, train.Schema, zip);
        var reloaded = new MLContext().Model.Load(zip, out _);
        double reloadedAccuracy = ml.MulticlassClassification.Evaluate(reloaded.Transform(test)).MicroAccuracy;
        AnsiConsole.MarkupLine($"ML.NET model zip: {Markup.Escape(zip)}; reloaded with mlContext.Model.Load, test accuracy {reloadedAccuracy:P2}");
        return new SampleResult(metrics.MicroAccuracy, metrics.LogLoss, curves, checkpoint, zip, reloadedAccuracy);
    }

    private sealed class SpectreProgress(ProgressTask task) : IProgress<TrainingProgress>
    {
        public void Report(TrainingProgress p)
        {
            task.Value = p.Epoch - 1 + (double)p.Batch / p.Batches;
            task.Description = p.EpochEnd
                ? $"epoch {p.Epoch}: loss {p.Loss:F3}, val acc {p.ValidationAccuracy:P1}"
                : $"epoch {p.Epoch}/{p.Epochs} loss {p.Loss:F3} {p.ImagesPerSecond:F0} img/s";
        }
    }

    private sealed class LineProgress : IProgress<TrainingProgress>
    {
        public void Report(TrainingProgress p)
        {
            if (p.EpochEnd)
                Console.WriteLine($"epoch {p.Epoch}/{p.Epochs}  loss {p.Loss:F4}  accuracy {p.Accuracy:P1}  validation loss {p.ValidationLoss:F4}  validation accuracy {p.ValidationAccuracy:P1}  {p.ImagesPerSecond:F0} img/s");
        }
    }
}
