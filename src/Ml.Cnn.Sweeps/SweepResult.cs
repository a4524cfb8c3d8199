using System.Globalization;
using System.Text;
using Microsoft.ML;
using SkiaSharp;
using Spectre.Console;

namespace Ml.Cnn.Sweeps;

/// <summary>A finished sweep: its trials as storage holds them, the leaderboard and the best model refit.</summary>
public sealed class SweepResult
{
    /// <summary>The study (open it again to add trials, or from other processes).</summary>
    public Study Study { get; }

    /// <summary>The objective.</summary>
    public SweepMetric Metric { get; }

    /// <summary>Every trial, in number order, as it stood when the sweep ended.</summary>
    public IReadOnlyList<TrialRecord> Trials { get; }

    /// <summary>The best complete trial (null if none completed).</summary>
    public TrialRecord? Best { get; }

    /// <summary>The best trial's pipeline fitted on the training data (null without <c>RefitBest</c> or a complete trial).</summary>
    public ITransformer? BestModel { get; }

    internal SweepResult(Study study, SweepMetric metric, ITransformer? bestModel)
    {
        (Study, Metric, BestModel) = (study, metric, bestModel);
        Trials = study.Trials();
        Best = study.Best();
    }

    /// <summary>Epochs (or folds) run by all trials together: what pruning saves.</summary>
    public int StepsRun => Trials.Sum(t => t.Steps);

    /// <summary>Trials best first: complete ones by objective, then pruned ones by their last value, then failed ones.</summary>
    public IReadOnlyList<TrialRecord> Ranked()
    {
        double Key(TrialRecord t) => (t.Value ?? double.NaN) * (Study.Direction == StudyDirection.Maximize ? -1 : 1);
        return Trials.OrderBy(t => t.State switch { TrialState.Complete => 0, TrialState.Pruned => 1, TrialState.Running => 2, _ => 3 })
            .ThenBy(t => double.IsNaN(Key(t)) ? double.MaxValue : Key(t)).ThenBy(t => t.Number).ToList();
    }

    /// <summary>Writes the leaderboard as a table (the <paramref name="top"/> best, or all) to <paramref name="writer"/> (default: the console).</summary>
    public void WriteLeaderboard(TextWriter? writer = null, int? top = null)
    {
        var console = writer is null ? AnsiConsole.Console : AnsiConsole.Create(new AnsiConsoleSettings
        {
            Out = new AnsiConsoleOutput(writer), Ansi = AnsiSupport.No, ColorSystem = ColorSystemSupport.NoColors,
        });
        // Redirected output gets 80 columns by default, which folds every parameter's value.
        if (writer is not null || Console.IsOutputRedirected) console.Profile.Width = 200;
        var names = ParameterNames();
        var table = new Table().Title($"Study {Markup.Escape(Study.Name)}: {Metric} ({Study.Direction.ToString().ToLowerInvariant()}d), " +
            $"{Trials.Count} trials, {StepsRun} steps");
        foreach (var column in new[] { "rank", "trial" }.Concat(names).Concat(["metric", "steps", "state", "time s"])) table.AddColumn(Markup.Escape(column));
        int rank = 0;
        foreach (var t in Ranked().Take(top ?? int.MaxValue))
        {
            var cells = new List<string> { (++rank).ToString(CultureInfo.InvariantCulture), t.Number.ToString(CultureInfo.InvariantCulture) };
            cells.AddRange(names.Select(n => t.Parameters.TryGetValue(n, out var v) ? v is float or double ? ((IFormattable)v).ToString("G4", CultureInfo.InvariantCulture) : Show(v) : "–"));
            cells.Add(t.Value is { } value ? value.ToString("F4", CultureInfo.InvariantCulture) + (t.ValueStd is { } s ? $" ± {s.ToString("F4", CultureInfo.InvariantCulture)}" : "") : "–");
            cells.Add(t.Steps.ToString(CultureInfo.InvariantCulture));
            cells.Add(t.State + (t.Attempts > 1 ? $" ({t.Attempts} attempts)" : ""));
            cells.Add(t.Seconds.ToString("F1", CultureInfo.InvariantCulture));
            table.AddRow(cells.Select(Markup.Escape).ToArray());
        }
        console.Write(table);
        foreach (var t in Trials.Where(t => t.State == TrialState.Failed))
            console.WriteLine($"trial {t.Number} failed: {t.Message}");
    }

    /// <summary>Writes every trial as CSV (one column per parameter; intermediate values joined by ';'), atomically. Returns the full path.</summary>
    public string SaveCsv(string path)
    {
        var names = ParameterNames();
        var csv = new StringBuilder();
        csv.AppendLine(string.Join(",", new[] { "trial", "state" }.Concat(names).Concat(["value", "value_std", "steps", "attempts", "seconds", "intermediate", "message"]).Select(Quote)));
        foreach (var t in Trials)
        {
            var cells = new List<string> { t.Number.ToString(CultureInfo.InvariantCulture), t.State.ToString() };
            cells.AddRange(names.Select(n => t.Parameters.TryGetValue(n, out var v) ? Show(v) : ""));
            cells.Add(t.Value?.ToString("R", CultureInfo.InvariantCulture) ?? "");
            cells.Add(t.ValueStd?.ToString("R", CultureInfo.InvariantCulture) ?? "");
            cells.Add(t.Steps.ToString(CultureInfo.InvariantCulture));
            cells.Add(t.Attempts.ToString(CultureInfo.InvariantCulture));
            cells.Add(t.Seconds.ToString("F3", CultureInfo.InvariantCulture));
            cells.Add(string.Join(";", t.Intermediate.Select(i => i.Value.ToString("R", CultureInfo.InvariantCulture))));
            cells.Add(t.Message ?? "");
            csv.AppendLine(string.Join(",", cells.Select(Quote)));
        }
        return WriteAtomically(path, Encoding.UTF8.GetBytes(csv.ToString()));
    }

    /// <summary>
    /// Saves a PNG, atomically: on the left the objective of each trial (complete in blue, pruned in grey, the best so
    /// far as a green line), on the right each trial's intermediate values by step (pruned curves in grey). Returns the full path.
    /// </summary>
    public string SavePlot(string path)
    {
        const int width = 1200, height = 500, margin = 60;
        using var surface = SKSurface.Create(new SKImageInfo(width, height));
        var canvas = surface.Canvas;
        canvas.Clear(SKColors.White);
        var values = Trials.Where(t => t.Value is not null).Select(t => t.Value!.Value)
            .Concat(Trials.SelectMany(t => t.Intermediate.Select(i => i.Value))).Where(double.IsFinite).ToList();
        double low = values.Count > 0 ? values.Min() : 0, high = values.Count > 0 ? values.Max() : 1;
        if (high - low < 1e-9) (low, high) = (low - 0.5, high + 0.5);
        var left = new SKRect(margin, 56, width / 2 - 20, height - margin);
        var right = new SKRect(width / 2 + margin, 56, width - 20, height - margin);
        int maxStep = Math.Max(1, Trials.Select(t => t.Steps).DefaultIfEmpty(1).Max());
        Axes(canvas, left, "trial", Metric.ToString(), 0, Math.Max(1, Trials.Count - 1), low, high);
        Axes(canvas, right, "step (epoch or fold)", Metric.ToString(), 1, Math.Max(2, maxStep), low, high);

        SKPoint At(SKRect r, double x, double xMax, double xMin, double y) =>
            new((float)(r.Left + (x - xMin) / (xMax - xMin) * r.Width), (float)(r.Bottom - (y - low) / (high - low) * r.Height));
        using var blue = new SKPaint { Color = new SKColor(31, 119, 180), IsAntialias = true, StrokeWidth = 2, Style = SKPaintStyle.Stroke };
        using var grey = new SKPaint { Color = new SKColor(160, 160, 160), IsAntialias = true, StrokeWidth = 1.5f, Style = SKPaintStyle.Stroke };
        using var green = new SKPaint { Color = new SKColor(44, 160, 44), IsAntialias = true, StrokeWidth = 2, Style = SKPaintStyle.Stroke };
        double xMaxTrials = Math.Max(1, Trials.Count - 1);
        double? best = null;
        SKPoint? previous = null;
        var view = Study.View();
        foreach (var t in Trials)
        {
            if (t.Value is not { } v || !double.IsFinite(v)) continue;
            var point = At(left, t.Number, xMaxTrials, 0, v);
            canvas.DrawCircle(point, 4, t.State == TrialState.Complete ? blue : grey);
            if (t.State != TrialState.Complete) continue;
            if (best is null || view.Better(v, best.Value)) best = v;
            var bestPoint = At(left, t.Number, xMaxTrials, 0, best.Value);
            if (previous is { } p) canvas.DrawLine(p, new SKPoint(bestPoint.X, p.Y), green);
            if (previous is { } q) canvas.DrawLine(new SKPoint(bestPoint.X, q.Y), bestPoint, green);
            previous = bestPoint;
        }
        foreach (var t in Trials.Where(t => t.Intermediate.Count > 0))
        {
            var paint = t.State == TrialState.Complete ? blue : grey;
            var points = t.Intermediate.Select(i => At(right, i.Step, Math.Max(2, maxStep), 1, i.Value)).ToArray();
            for (int i = 1; i < points.Length; i++) canvas.DrawLine(points[i - 1], points[i], paint);
            foreach (var point in points) canvas.DrawCircle(point, 2.5f, paint);
        }
        using var title = new SKPaint { Color = SKColors.Black, IsAntialias = true, TextSize = 16 };
        canvas.DrawText($"Study {Study.Name}: {Trials.Count} trials ({Trials.Count(t => t.State == TrialState.Pruned)} pruned), " +
            $"{StepsRun} steps; best {Best?.Value?.ToString("F4", CultureInfo.InvariantCulture) ?? "none"}", margin, 24, title);
        using var image = surface.Snapshot();
        using var png = image.Encode(SKEncodedImageFormat.Png, 100);
        return WriteAtomically(path, png.ToArray());
    }

    private static void Axes(SKCanvas canvas, SKRect r, string xLabel, string yLabel, double xMin, double xMax, double yMin, double yMax)
    {
        using var axis = new SKPaint { Color = SKColors.Black, IsAntialias = true, StrokeWidth = 1, Style = SKPaintStyle.Stroke };
        using var text = new SKPaint { Color = SKColors.Black, IsAntialias = true, TextSize = 12 };
        canvas.DrawRect(r, axis);
        for (int i = 0; i <= 4; i++)
        {
            double y = yMin + (yMax - yMin) * i / 4, x = xMin + (xMax - xMin) * i / 4;
            float py = r.Bottom - r.Height * i / 4, px = r.Left + r.Width * i / 4;
            canvas.DrawLine(r.Left - 4, py, r.Left, py, axis);
            canvas.DrawText(y.ToString("G3", CultureInfo.InvariantCulture), r.Left - 50, py + 4, text);
            canvas.DrawLine(px, r.Bottom, px, r.Bottom + 4, axis);
            canvas.DrawText(x.ToString("0.#", CultureInfo.InvariantCulture), px - 6, r.Bottom + 18, text);
        }
        canvas.DrawText(xLabel, r.MidX - 40, r.Bottom + 36, text);
        canvas.DrawText(yLabel, r.Left, r.Top - 6, text);
    }

    private List<string> ParameterNames() => Study.Space.Names.ToList();

    private static string Show(object value) => value is string s ? s : Parameters.Format(value).Trim('"');

    private static string Quote(string cell) => cell.IndexOfAny([',', '"', '\n']) < 0 ? cell : "\"" + cell.Replace("\"", "\"\"") + "\"";

    private static string WriteAtomically(string path, byte[] bytes)
    {
        Directory.CreateDirectory(Path.GetDirectoryName(Path.GetFullPath(path))!);
        return Ml.Cnn.Core.AtomicFile.Write(path, bytes);
    }
}
