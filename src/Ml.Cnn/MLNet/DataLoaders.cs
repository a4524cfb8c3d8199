using Microsoft.ML;
using Microsoft.ML.Data;
using Ml.Cnn.Data;

namespace Ml.Cnn.MLNet;

/// <summary>
/// Loaders for the classic image datasets, as IDataViews with <c>Features</c> (a vector of Single, CHW, scaled as
/// asked) and <c>Label</c> (text: the class name; map it with <c>MapValueToKey</c>).
/// </summary>
public static class DataLoaders
{
    /// <summary>MNIST/Fashion-MNIST IDX files (raw or gzip). Class names default to the digits 0–9.</summary>
    public static IDataView LoadFromIdxFiles(this DataOperationsCatalog catalog, string imagesPath, string labelsPath,
        float scale = 1f / 255, IReadOnlyList<string>? classNames = null)
    {
        var names = classNames ?? Enumerable.Range(0, 10).Select(i => i.ToString()).ToArray();
        return ToDataView(catalog, Idx.Load(imagesPath, labelsPath, scale, names.Count), names);
    }

    /// <summary>CIFAR-10 binary batch files; labels are CIFAR-10's class names.</summary>
    public static IDataView LoadFromCifar10Files(this DataOperationsCatalog catalog, IEnumerable<string> batchFiles, float scale = 1f / 255) =>
        ToDataView(catalog, Cifar10.Load(batchFiles, scale), Cifar10.Classes);

    /// <summary>
    /// A folder with one subfolder per class, each holding images: rows of <c>ImagePath</c> and <c>Label</c> (the
    /// subfolder name), ready for <c>LoadImages</c>. Files with the given extensions only, in sorted order.
    /// </summary>
    public static IDataView LoadFromImageFolder(this DataOperationsCatalog catalog, string folder, params string[] extensions)
    {
        if (!Directory.Exists(folder)) throw new DirectoryNotFoundException($"Image folder '{folder}' does not exist.");
        var allowed = (extensions.Length > 0 ? extensions : [".png", ".jpg", ".jpeg", ".bmp"]).Select(e => e.ToLowerInvariant()).ToHashSet();
        var rows = Directory.GetDirectories(folder).Order(StringComparer.Ordinal)
            .SelectMany(classFolder => Directory.GetFiles(classFolder).Order(StringComparer.Ordinal)
                .Where(f => allowed.Contains(Path.GetExtension(f).ToLowerInvariant()))
                .Select(f => new ImageFileRow { ImagePath = Path.GetFullPath(f), Label = Path.GetFileName(classFolder) }))
            .ToList();
        if (rows.Count == 0)
            throw new InvalidDataException($"Image folder '{folder}' has no images ({string.Join(", ", allowed)}) in class subfolders.");
        return catalog.LoadFromEnumerable(rows);
    }

    /// <summary>A dataset as an IDataView with class-name labels.</summary>
    public static IDataView ToDataView(this DataOperationsCatalog catalog, ImageDataset data, IReadOnlyList<string> classNames)
    {
        int size = data.ItemShape.Length;
        var rows = Enumerable.Range(0, data.Count)
            .Select(i => new FeatureRow { Features = data.GetItem(i), Label = classNames[(int)data.Targets[i]] });
        var schema = SchemaDefinition.Create(typeof(FeatureRow));
        schema[nameof(FeatureRow.Features)].ColumnType = new VectorDataViewType(NumberDataViewType.Single, size);
        return catalog.LoadFromEnumerable(rows, schema);
    }

    private sealed class FeatureRow
    {
        public float[] Features { get; set; } = [];
        public string Label { get; set; } = "";
    }

    private sealed class ImageFileRow
    {
        public string ImagePath { get; set; } = "";
        public string Label { get; set; } = "";
    }
}
