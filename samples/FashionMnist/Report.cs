using Microsoft.ML.Data;
using Ml.Cnn.Training;
using Spectre.Console;

namespace FashionMnist;

internal static class Report
{
    /// <summary>Per-class precision, recall and F1, and the confusion matrix with class names.</summary>
    public static void Print(MulticlassClassificationMetrics metrics, IReadOnlyList<string> classes)
    {
        var matrix = metrics.ConfusionMatrix;
        var perClass = new Table().AddColumns("class", "precision", "recall", "F1");
        for (int c = 0; c < matrix.NumberOfClasses; c++)
        {
            double p = matrix.PerClassPrecision[c], r = matrix.PerClassRecall[c];
            perClass.AddRow(Markup.Escape(classes[c]), $"{p:F3}", $"{r:F3}", $"{(p + r == 0 ? 0 : 2 * p * r / (p + r)):F3}");
        }
        AnsiConsole.Write(perClass);

        var confusion = new Table().Title("confusion matrix (rows: true class, columns: predicted)").AddColumn("");
        for (int c = 0; c < matrix.NumberOfClasses; c++) confusion.AddColumn(new TableColumn(Markup.Escape(Abbreviate(classes[c]))).RightAligned());
        for (int r = 0; r < matrix.NumberOfClasses; r++)
            confusion.AddRow([Markup.Escape(classes[r]), .. Enumerable.Range(0, matrix.NumberOfClasses).Select(c => $"{matrix.Counts[r][c]:F0}")]);
        AnsiConsole.Write(confusion);
    }

    private static string Abbreviate(string name) => name.Length <= 7 ? name : name[..7];

    /// <summary>Training and validation loss and accuracy per epoch, as a PNG.</summary>
    public static string PlotCurves(IReadOnlyList<EpochStatistics> history, string architecture, string path)
    {
        var plot = new ScottPlot.Plot();
        double[] epochs = history.Select(h => (double)h.Epoch).ToArray();
        var trainLoss = plot.Add.Scatter(epochs, history.Select(h => (double)h.TrainingLoss).ToArray());
        trainLoss.LegendText = "training loss";
        var validationLoss = plot.Add.Scatter(epochs, history.Select(h => (double)h.ValidationLoss).ToArray());
        validationLoss.LegendText = "validation loss";
        var trainAccuracy = plot.Add.Scatter(epochs, history.Select(h => (double)h.TrainingAccuracy).ToArray());
        trainAccuracy.LegendText = "training accuracy";
        var validationAccuracy = plot.Add.Scatter(epochs, history.Select(h => (double)h.ValidationAccuracy).ToArray());
        validationAccuracy.LegendText = "validation accuracy";
        plot.XLabel("epoch");
        plot.Title($"Fashion-MNIST, {architecture}");
        plot.ShowLegend();
        string full = Path.GetFullPath(path);
        string temporary = full + ".tmp.png";
        plot.SavePng(temporary, 800, 500);
        File.Move(temporary, full, overwrite: true); // never leave a half-written plot behind
        return full;
    }
}
