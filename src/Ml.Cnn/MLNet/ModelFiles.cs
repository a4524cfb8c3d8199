using System.Reflection;
using Microsoft.ML;

namespace Ml.Cnn.MLNet;

/// <summary>Saving ML.NET model zips so that a crash mid-save never leaves a broken file where a good one was.</summary>
public static class ModelFiles
{
    /// <summary>
    /// <c>mlContext.Model.Save</c>, atomically: the zip is written to a temporary file in the same folder, flushed to
    /// disk, then renamed over <paramref name="path"/>. ML.NET's own Save writes in place, so a process killed
    /// mid-save leaves a truncated zip instead of the previous model. Temporary files of saves that were killed
    /// earlier are removed.
    /// </summary>
    public static void SaveAtomically(this ModelOperationsCatalog catalog, ITransformer model, DataViewSchema inputSchema, string path)
    {
        string full = Path.GetFullPath(path);
        string folder = Path.GetDirectoryName(full)!, name = Path.GetFileName(full);
        Directory.CreateDirectory(folder);
        foreach (var stale in Directory.EnumerateFiles(folder, $".{name}.*.tmp")) File.Delete(stale);
        string temporary = Path.Combine(folder, $".{name}.{Guid.NewGuid():N}.tmp");
        try
        {
            using (var stream = new FileStream(temporary, FileMode.CreateNew, FileAccess.Write, FileShare.None))
            {
                catalog.Save(model, inputSchema, stream);
                stream.Flush(flushToDisk: true);
            }
            File.Move(temporary, full, overwrite: true);
        }
        catch
        {
            File.Delete(temporary);
            throw;
        }
    }

    /// <summary>
    /// <c>mlContext.Model.Load</c>, with a load that fails for a bad file reported as
    /// <see cref="InvalidDataException"/> naming the file and the real cause: ML.NET wraps a loader's error in
    /// <see cref="TargetInvocationException"/>s, often two deep, and a damaged zip surfaces as whatever framework
    /// exception its reader hit. The loaded chain's output schema is built before returning, so a zip whose stored
    /// column names were damaged fails here too. A missing file stays <see cref="FileNotFoundException"/>.
    /// </summary>
    public static ITransformer LoadModel(this ModelOperationsCatalog catalog, string path, out DataViewSchema inputSchema)
    {
        if (!File.Exists(path)) throw new FileNotFoundException($"Model file '{path}' does not exist.", path);
        try
        {
            var model = catalog.Load(path, out inputSchema);
            // A damaged zip can load and name columns that do not exist; say so now, not at the first Transform.
            model.GetOutputSchema(inputSchema);
            return model;
        }
        catch (Exception e) when (e is not (OutOfMemoryException or OperationCanceledException))
        {
            var cause = e;
            while (cause is TargetInvocationException or AggregateException && cause.InnerException is { } inner) cause = inner;
            throw new InvalidDataException($"Model file '{path}' cannot be loaded: {cause.GetType().Name}: {cause.Message}", cause);
        }
    }
}
