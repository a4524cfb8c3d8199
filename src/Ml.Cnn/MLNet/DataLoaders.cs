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
    /// A folder with one subfolder per class, each holding images: rows of <c>ImagePath</c> and <c>Label</c>, ready
    /// for <c>LoadImages</c>. Files with the given extensions only, in sorted order. A class is any folder below
    /// <paramref name="folder"/> that holds images itself; its label is its path below <paramref name="folder"/> with
    /// '/' between the parts, so a class named "T-shirt/top", written as the nested folders T-shirt and top, keeps its
    /// name. A subfolder that holds no images at any depth is refused rather than silently dropped: its class would be
    /// missing from the label's key values.
    /// </summary>
    public static IDataView LoadFromImageFolder(this DataOperationsCatalog catalog, string folder, params string[] extensions)
    {
        if (!Directory.Exists(folder)) throw new DirectoryNotFoundException($"Image folder '{folder}' does not exist.");
        var allowed = (extensions.Length > 0 ? extensions : [".png", ".jpg", ".jpeg", ".bmp"]).Select(e => e.ToLowerInvariant()).ToHashSet();
        var rows = new List<ImageFileRow>();
        foreach (var classFolder in Directory.GetDirectories(folder).Order(StringComparer.Ordinal))
        {
            int before = rows.Count;
            AddClassImages(folder, classFolder, allowed, rows);
            if (rows.Count == before)
                throw new InvalidDataException(
                    $"Class folder '{classFolder}' holds no images ({string.Join(", ", allowed)}) at any depth; remove it or add its images.");
        }
        if (rows.Count == 0)
            throw new InvalidDataException($"Image folder '{folder}' has no images ({string.Join(", ", allowed)}) in class subfolders.");
        return catalog.LoadFromEnumerable(rows);
    }

    private static void AddClassImages(string root, string classFolder, HashSet<string> allowed, List<ImageFileRow> rows)
    {
        string label = Path.GetRelativePath(root, classFolder).Replace(Path.DirectorySeparatorChar, '/');
        rows.AddRange(Directory.GetFiles(classFolder).Order(StringComparer.Ordinal)
            .Where(f => allowed.Contains(Path.GetExtension(f).ToLowerInvariant()))
            .Select(f => new ImageFileRow { ImagePath = Path.GetFullPath(f), Label = label }));
        foreach (var nested in Directory.GetDirectories(classFolder).Order(StringComparer.Ordinal))
            AddClassImages(root, nested, allowed, rows);
    }

    /// <summary>A dataset as an IDataView with class-name labels.</summary>
    public static IDataView ToDataView(this DataOperationsCatalog catalog, ImageDataset data, IReadOnlyList<string> classNames)
    {
        int size = data.ItemShape.Length;
        var rows = Enumerable.Range(0, data.Count)
            .Select(i => new FeatureRow { Features = data.GetItem(i), Label = classNames[(int)data.Targets[i]] });
        var schema = SchemaDefinition.Create(typeof(FeatureRow));
        // Announce [C, H, W] as ExtractPixels does, so the trainers take the shape from the schema.
        var shape = data.ItemShape;
        schema[nameof(FeatureRow.Features)].ColumnType = shape.Rank == 3
            ? new VectorDataViewType(NumberDataViewType.Single, shape[0], shape[1], shape[2])
            : new VectorDataViewType(NumberDataViewType.Single, size);
        return catalog.LoadFromEnumerable(rows, schema);
    }

    /// <summary>
    /// Generated scenes (<see cref="SceneGenerator"/>) as an IDataView for segmentation and detection: <c>Features</c>,
    /// the image as a vector of Single with dimensions [C, H, W]; <c>Label</c>, the mask as a vector of H·W keys whose
    /// key values are "background" and then <paramref name="classNames"/> (key 1 is background, key c + 2 class c);
    /// <c>Labels</c>, one key per object (key c + 1 is class c, key values <paramref name="classNames"/>); <c>Box</c>,
    /// x0, y0, x1, y1 per object in pixels — the columns of ML.NET's object-detection trainer.
    /// </summary>
    public static IDataView LoadFromScenes(this DataOperationsCatalog catalog, IReadOnlyList<Scene> scenes, int channels, int height, int width,
        IReadOnlyList<string> classNames)
    {
        ArgumentNullException.ThrowIfNull(scenes);
        ArgumentNullException.ThrowIfNull(classNames);
        int pixels = height * width, keys = classNames.Count + 1;
        var rows = scenes.Select((scene, i) =>
        {
            if (scene.Image.Length != channels * pixels || scene.Mask.Length != pixels)
                throw new ArgumentException($"Scene {i} is not {channels}x{height}x{width}.", nameof(scenes));
            var mask = new uint[pixels];
            for (int p = 0; p < pixels; p++)
                mask[p] = scene.Mask[p] is var label && label >= 0 && label < keys ? (uint)label + 1
                    : throw new ArgumentException($"Scene {i}, pixel {p}: label {label} for {classNames.Count} classes and background.", nameof(scenes));
            return new SceneRow
            {
                Features = scene.Image, Label = mask, Labels = scene.Objects.Select(o => (uint)o.Label + 1).ToArray(),
                Box = scene.Objects.SelectMany(o => new[] { o.X0, o.Y0, o.X1, o.Y1 }).ToArray(),
            };
        });
        var schema = SchemaDefinition.Create(typeof(SceneRow));
        schema[nameof(SceneRow.Features)].ColumnType = new VectorDataViewType(NumberDataViewType.Single, channels, height, width);
        var label = schema[nameof(SceneRow.Label)];
        label.ColumnType = new VectorDataViewType(new KeyDataViewType(typeof(uint), keys), pixels);
        var names = new VBuffer<ReadOnlyMemory<char>>(keys, ["background".AsMemory(), .. classNames.Select(n => n.AsMemory())]);
        label.AddAnnotation(ClassifierColumns.KeyValuesKind, names, new VectorDataViewType(TextDataViewType.Instance, keys));
        var objectLabels = schema[nameof(SceneRow.Labels)];
        objectLabels.ColumnType = new VectorDataViewType(new KeyDataViewType(typeof(uint), classNames.Count));
        var objectNames = new VBuffer<ReadOnlyMemory<char>>(classNames.Count, classNames.Select(n => n.AsMemory()).ToArray());
        objectLabels.AddAnnotation(ClassifierColumns.KeyValuesKind, objectNames, new VectorDataViewType(TextDataViewType.Instance, classNames.Count));
        schema[nameof(SceneRow.Box)].ColumnType = new VectorDataViewType(NumberDataViewType.Single);
        return catalog.LoadFromEnumerable(rows, schema);
    }

    private sealed class SceneRow
    {
        public float[] Features { get; set; } = [];
        public uint[] Label { get; set; } = [];
        public uint[] Labels { get; set; } = [];
        public float[] Box { get; set; } = [];
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
