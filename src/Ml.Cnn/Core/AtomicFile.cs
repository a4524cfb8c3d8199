namespace Ml.Cnn.Core;

/// <summary>Whole-file writes that never leave a partial file behind.</summary>
internal static class AtomicFile
{
    /// <summary>
    /// Writes bytes to a temporary file beside <paramref name="path"/> (named uniquely, so concurrent writers do not
    /// share it), flushes it to disk and renames it over the target. Returns the full path.
    /// </summary>
    public static string Write(string path, byte[] bytes)
    {
        string full = Path.GetFullPath(path);
        string temporary = $"{full}.{Guid.NewGuid():N}.tmp";
        try
        {
            using (var stream = new FileStream(temporary, FileMode.CreateNew, FileAccess.Write))
            {
                stream.Write(bytes);
                stream.Flush(flushToDisk: true);
            }
            File.Move(temporary, full, overwrite: true);
        }
        finally
        {
            if (File.Exists(temporary)) File.Delete(temporary);
        }
        return full;
    }
}
