using System.IO.Compression;
using System.Reflection;
using System.Security.Cryptography;
using System.Text;
using Microsoft.ML;

namespace Ml.Cnn.MLNet;

/// <summary>
/// Saving and loading ML.NET model zips so that a crash mid-save never leaves a broken file where a good one was, and
/// a damaged file is refused before any of it reaches a loader.
/// </summary>
public static class ModelFiles
{
    // SHA-256 over every other entry's name and content. ML.NET reads its entries by name and ignores this one, so a
    // zip that carries it still loads anywhere ML.NET does.
    private const string ChecksumEntry = "Ml.Cnn/SHA256";

    /// <summary>
    /// <c>mlContext.Model.Save</c>, atomically and checksummed: the zip is written to a temporary file in the same
    /// folder, gets an entry with the SHA-256 of its contents, is flushed to disk, then renamed over
    /// <paramref name="path"/>. ML.NET's own Save writes in place, so a process killed mid-save leaves a truncated zip
    /// instead of the previous model. Temporary files that killed saves left (untouched for 10 minutes) are removed.
    /// </summary>
    public static void SaveAtomically(this ModelOperationsCatalog catalog, ITransformer model, DataViewSchema inputSchema, string path)
    {
        string full = Path.GetFullPath(path);
        string folder = Path.GetDirectoryName(full)!, name = Path.GetFileName(full);
        Directory.CreateDirectory(folder);
        RemoveTemporariesOfEndedSaves(folder, name);
        string temporary = Path.Combine(folder, $".{name}.{Guid.NewGuid():N}.tmp");
        try
        {
            using (var stream = new FileStream(temporary, FileMode.CreateNew, FileAccess.ReadWrite, FileShare.None))
            {
                catalog.Save(model, inputSchema, stream);
                stream.Position = 0;
                using (var zip = new ZipArchive(stream, ZipArchiveMode.Update, leaveOpen: true))
                {
                    string checksum = Checksum(zip);
                    using var writer = new StreamWriter(zip.CreateEntry(ChecksumEntry).Open(), Encoding.ASCII);
                    writer.Write(checksum);
                }
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

    // A save writes its temporary without pause, so one untouched this long was left by a killed save. Age, not the
    // process id, decides: ids are reused (a restarted container's process is often 1 again) and mean nothing for a
    // temporary another machine writes to a shared folder.
    private static readonly TimeSpan StaleAge = TimeSpan.FromMinutes(10);

    /// <summary>Deletes the temporary files of <paramref name="name"/> that no save has written to for <see cref="StaleAge"/>.</summary>
    private static void RemoveTemporariesOfEndedSaves(string folder, string name)
    {
        foreach (var stale in Directory.EnumerateFiles(folder, $".{name}.*.tmp"))
            if (DateTime.UtcNow - File.GetLastWriteTimeUtc(stale) > StaleAge)
                try
                {
                    File.Delete(stale);
                }
                catch (IOException)
                {
                    // Another process is removing or renaming it: either way it is not ours to wait for.
                }
    }

    /// <summary>
    /// <c>mlContext.Model.Load</c> that refuses a damaged file with <see cref="InvalidDataException"/> naming the file
    /// and the cause. A zip saved by <see cref="SaveAtomically"/> is checked against its checksum first, so a damaged
    /// one never reaches ML.NET's loaders or ONNX Runtime (which can crash the process on a corrupt model). Other
    /// failures are unwrapped from the <see cref="TargetInvocationException"/>s ML.NET wraps them in, and the loaded
    /// chain's output schema is built before returning, so damaged column names fail here too. A missing file stays
    /// <see cref="FileNotFoundException"/>.
    /// </summary>
    public static ITransformer LoadModel(this ModelOperationsCatalog catalog, string path, out DataViewSchema inputSchema)
    {
        if (!File.Exists(path)) throw new FileNotFoundException($"Model file '{path}' does not exist.", path);
        VerifyChecksum(path);
        try
        {
            var model = catalog.Load(path, out inputSchema);
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

    private static void VerifyChecksum(string path)
    {
        string stored, computed;
        try
        {
            using var zip = ZipFile.OpenRead(path);
            var entry = zip.GetEntry(ChecksumEntry);
            if (entry is null) return; // written by ML.NET's own Save: nothing to check against
            using (var reader = new StreamReader(entry.Open(), Encoding.ASCII)) stored = reader.ReadToEnd();
            computed = Checksum(zip);
        }
        catch (Exception e) when (e is IOException or InvalidDataException or ArgumentException or NotSupportedException)
        {
            throw new InvalidDataException($"Model file '{path}' is not a readable zip: {e.Message}", e);
        }
        if (stored != computed)
            throw new InvalidDataException($"Model file '{path}' is damaged: its contents no longer match the checksum written when it was saved.");
    }

    private static string Checksum(ZipArchive zip)
    {
        using var hash = IncrementalHash.CreateHash(HashAlgorithmName.SHA256);
        var buffer = new byte[1 << 16];
        foreach (var entry in zip.Entries.Where(e => e.FullName != ChecksumEntry).OrderBy(e => e.FullName, StringComparer.Ordinal))
        {
            hash.AppendData(Encoding.UTF8.GetBytes(entry.FullName + "\n"));
            using var content = entry.Open();
            for (int n; (n = content.Read(buffer)) > 0;) hash.AppendData(buffer, 0, n);
        }
        return Convert.ToHexString(hash.GetHashAndReset());
    }
}
