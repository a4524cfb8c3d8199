using Microsoft.ML;
using Microsoft.ML.Data;
using Ml.Cnn.Data;
using Ml.Cnn.Tensors;

namespace Ml.Cnn.MLNet;

/// <summary>Reads an IDataView's feature and label columns into an <see cref="ImageDataset"/>, with clear errors.</summary>
internal static class DataViewReader
{
    private delegate void ReadOnlySpanAction(ReadOnlySpan<float> row);

    // ExtractPixels extracts one to four colour planes (alpha, red, green, blue).
    private const int MaxPixelChannels = 4;

    /// <summary>
    /// The per-item image shape [C, H, W]: stated by the options, else the feature column's dimensions (what
    /// ImageAnalytics' <c>ExtractPixels</c> announces: [C, H, W], or [H, W, C] for interleaved pixels, which is
    /// refused rather than taken as CHW), else guessed from the vector size when that size is a square 1- or 3-channel
    /// image. Anything else is refused with the way to state the shape.
    /// </summary>
    public static TensorShape ImageShape(CnnTrainerOptions options, VectorDataViewType type)
    {
        string column = options.FeatureColumnName;
        int size = type.Size;
        var dims = type.Dimensions;
        if (options.ImageChannels > 0 || options.ImageHeight > 0 || options.ImageWidth > 0)
        {
            if (options.ImageHeight <= 0 || options.ImageWidth <= 0)
                throw new ArgumentOutOfRangeException(nameof(options),
                    $"ImageHeight and ImageWidth must both be set (got {options.ImageHeight} and {options.ImageWidth}) when the image shape is stated.");
            var stated = new TensorShape(Math.Max(1, options.ImageChannels), options.ImageHeight, options.ImageWidth);
            if (stated.Length != size)
                throw new ArgumentOutOfRangeException(nameof(options),
                    $"Feature column '{column}' has {size} values but the image shape {stated} (channels × height × width) needs {stated.Length}.");
            if (dims.Length == 3 && !dims.SequenceEqual(stated.Dims))
                throw new ArgumentOutOfRangeException(nameof(options),
                    $"Feature column '{column}' announces dimensions [{string.Join(", ", dims)}] but the options state {stated}; " +
                    "pixels in another layout (interleaved HWC?) would train as garbage. Extract them as CHW (ExtractPixels with interleavePixelColors: false) or state the column's own shape.");
            return stated;
        }
        if (dims.Length == 3)
        {
            bool channelsFirst = dims[0] <= MaxPixelChannels, channelsLast = dims[2] <= MaxPixelChannels;
            if (channelsLast && !channelsFirst)
                throw new ArgumentOutOfRangeException(nameof(options),
                    $"Feature column '{column}' has dimensions [{string.Join(", ", dims)}]: interleaved (height × width × channels) pixels. " +
                    "The network takes channels × height × width: use ExtractPixels(…, interleavePixelColors: false).");
            if (channelsLast && channelsFirst && dims[0] != dims[2])
                throw new ArgumentOutOfRangeException(nameof(options),
                    $"Feature column '{column}' has dimensions [{string.Join(", ", dims)}], which may be channels-first or interleaved; " +
                    "set ImageChannels, ImageHeight and ImageWidth to say which.");
            return new TensorShape(dims[0], dims[1], dims[2]);
        }
        if (dims.Length == 2) return new TensorShape(1, dims[0], dims[1]);
        if (dims.Length > 3)
            throw new ArgumentOutOfRangeException(nameof(options),
                $"Feature column '{column}' has {dims.Length} dimensions [{string.Join(", ", dims)}]; an image has channels, height and width.");
        foreach (int channels in new[] { 1, 3 })
        {
            int side = (int)Math.Round(Math.Sqrt(size / (double)channels));
            if (size % channels == 0 && side * side * channels == size) return new TensorShape(channels, side, side);
        }
        throw new ArgumentOutOfRangeException(nameof(options),
            $"Feature column '{column}' has {size} values and no dimensions, which is not a square 1- or 3-channel image; " +
            "set ImageChannels, ImageHeight and ImageWidth, or give the column its dimensions (ExtractPixels does).");
    }

    /// <summary>Reads features and key labels (1-based keys become 0-based classes).</summary>
    public static ImageDataset ReadClassification(IDataView data, CnnTrainerOptions options, out int classCount, out TensorShape imageShape)
    {
        var featureColumn = FeatureColumn(data.Schema, options.FeatureColumnName);
        imageShape = ImageShape(options, (VectorDataViewType)featureColumn.Type);
        var items = new ItemStore(imageShape.Length);
        var (labels, classes) = ReadKeyed(data, options.FeatureColumnName, options.LabelColumnName, items.Add);
        classCount = classes;
        return new ImageDataset(imageShape, items, labels, classCount: classCount);
    }

    /// <summary>Reads any known-size float vector column and a key label column (keys 1..K become classes 0..K−1).</summary>
    public static (float[] Features, float[] Labels, int Dimension, int ClassCount) ReadKeyedVectors(IDataView data, string featureColumnName, string labelColumnName)
    {
        int dimension = ((VectorDataViewType)FeatureColumn(data.Schema, featureColumnName).Type).Size;
        // Rows go to a compact store first: for 8-bit images the one full-size float array is the result.
        var items = new ItemStore(dimension);
        var (labels, classCount) = ReadKeyed(data, featureColumnName, labelColumnName, items.Add);
        var flat = new float[(long)items.Count * dimension];
        for (int i = 0; i < items.Count; i++) items.CopyItem(i, flat.AsSpan(i * dimension, dimension));
        return (flat, labels, dimension, classCount);
    }

    /// <summary>Hands each row's features to <paramref name="addRow"/> and returns the 0-based class labels.</summary>
    private static (float[] Labels, int ClassCount) ReadKeyed(IDataView data, string featureColumnName, string labelColumnName, ReadOnlySpanAction addRow)
    {
        var featureColumn = FeatureColumn(data.Schema, featureColumnName);
        var labelColumn = data.Schema.GetColumnOrNull(labelColumnName)
            ?? throw new ArgumentOutOfRangeException(nameof(data), $"Label column '{labelColumnName}' not found in the input.");
        if (labelColumn.Type is not KeyDataViewType key)
            throw new ArgumentOutOfRangeException(nameof(data),
                $"Label column '{labelColumnName}' must be a key type, got {labelColumn.Type}. Map it with mlContext.Transforms.Conversion.MapValueToKey(\"{labelColumnName}\") before the trainer.");
        int classCount = checked((int)key.Count);
        if (classCount < 2) throw new ArgumentOutOfRangeException(nameof(data), $"Label column '{labelColumnName}' has {classCount} class; at least 2 are needed.");
        int dimension = ((VectorDataViewType)featureColumn.Type).Size;
        var labels = new List<float>();
        using var cursor = data.GetRowCursor([featureColumn, labelColumn]);
        var getFeatures = cursor.GetGetter<VBuffer<float>>(featureColumn);
        var labelGetter = KeyGetter(cursor, labelColumn);
        var buffer = default(VBuffer<float>);
        var row = new float[dimension];
        while (cursor.MoveNext())
        {
            uint label = labelGetter();
            if (label == 0)
                throw new InvalidOperationException($"Row {cursor.Position}: label column '{labelColumnName}' is missing (key 0); filter such rows or map them to a class.");
            ReadRow(getFeatures, ref buffer, row, featureColumnName, cursor.Position);
            addRow(row);
            labels.Add(label - 1);
        }
        if (labels.Count == 0) throw new InvalidOperationException($"The training data is empty: no rows in '{featureColumnName}'.");
        return ([.. labels], classCount);
    }

    /// <summary>
    /// Reads features and per-pixel key labels for segmentation: keys 1..K become classes 0..K−1, key 0 (missing) the
    /// ignored label. The label vector must hold one key per pixel of the image shape.
    /// </summary>
    public static ImageDataset ReadSegmentation(IDataView data, CnnTrainerOptions options, out int classCount, out TensorShape imageShape)
    {
        var featureColumn = FeatureColumn(data.Schema, options.FeatureColumnName);
        imageShape = ImageShape(options, (VectorDataViewType)featureColumn.Type);
        var labelColumn = MaskColumn(data.Schema, options.LabelColumnName, "Label");
        var key = (KeyDataViewType)((VectorDataViewType)labelColumn.Type).ItemType;
        classCount = checked((int)key.Count);
        int pixels = imageShape.Length / imageShape[0];
        if (((VectorDataViewType)labelColumn.Type).Size != pixels)
            throw new ArgumentOutOfRangeException(nameof(data), $"Label column '{options.LabelColumnName}' holds {((VectorDataViewType)labelColumn.Type).Size} " +
                $"keys but the images of '{options.FeatureColumnName}' are {imageShape} (channels × height × width): one key per pixel, {pixels}, is needed.");
        if (classCount < 2) throw new ArgumentOutOfRangeException(nameof(data), $"Label column '{options.LabelColumnName}' has {classCount} class; at least 2 are needed.");
        var items = new ItemStore(imageShape.Length);
        var labels = new List<float>();
        using var cursor = data.GetRowCursor([featureColumn, labelColumn]);
        var getFeatures = cursor.GetGetter<VBuffer<float>>(featureColumn);
        var getLabels = KeyVectorGetter(cursor, labelColumn);
        var buffer = default(VBuffer<float>);
        var row = new float[imageShape.Length];
        var mask = new uint[pixels];
        while (cursor.MoveNext())
        {
            ReadRow(getFeatures, ref buffer, row, options.FeatureColumnName, cursor.Position);
            mask = getLabels(mask);
            items.Add(row);
            foreach (uint k in mask) labels.Add(k == 0 ? ImageDataset.IgnoredLabel : k - 1);
        }
        if (items.Count == 0) throw new InvalidOperationException($"The training data is empty: no rows in '{options.FeatureColumnName}'.");
        return new ImageDataset(imageShape, items, [.. labels], pixels, classCount);
    }

    /// <summary>
    /// Every row's true and predicted masks, laid end to end as 0-based classes (truth key 0 becomes the ignored
    /// label), for the segmentation evaluator; both columns are key vectors of one length and key count.
    /// </summary>
    public static (int[] Truth, int[] Predicted, int Classes) ReadMaskPairs(IDataView data, string labelColumnName, string predictedColumnName)
    {
        var label = MaskColumn(data.Schema, labelColumnName, "Label", knownSize: false);
        var predicted = MaskColumn(data.Schema, predictedColumnName, "Predicted label", knownSize: false);
        var (labelType, predictedType) = ((VectorDataViewType)label.Type, (VectorDataViewType)predicted.Type);
        int classes = checked((int)((KeyDataViewType)labelType.ItemType).Count);
        if (((KeyDataViewType)predictedType.ItemType).Count != (ulong)classes)
            throw new ArgumentOutOfRangeException(nameof(data), $"Columns '{labelColumnName}' ({labelType}) and '{predictedColumnName}' ({predictedType}) " +
                "must be key vectors of one key count.");
        var (truth, guesses) = (new List<int>(), new List<int>());
        using var cursor = data.GetRowCursor([label, predicted]);
        var (getTruth, getGuess) = (KeyVectorGetter(cursor, label), KeyVectorGetter(cursor, predicted));
        uint[] t = [], g = [];
        while (cursor.MoveNext())
        {
            t = getTruth(t);
            g = getGuess(g);
            if (t.Length != g.Length)
                throw new InvalidOperationException($"Row {cursor.Position}: '{labelColumnName}' has {t.Length} pixels, '{predictedColumnName}' {g.Length}.");
            for (int i = 0; i < t.Length; i++)
            {
                if (g[i] == 0) throw new InvalidOperationException($"Row {cursor.Position}: '{predictedColumnName}' has a missing key (0) at pixel {i}.");
                truth.Add(t[i] == 0 ? ImageDataset.IgnoredLabel : (int)t[i] - 1);
                guesses.Add((int)g[i] - 1);
            }
        }
        return ([.. truth], [.. guesses], classes);
    }

    /// <summary>
    /// Reads features and each row's objects for detection, as CenterNet targets on the output map of
    /// <paramref name="stride"/> pixels per cell: the label column is a vector of keys (keys 1..K become classes
    /// 0..K−1), the box column four values per key.
    /// </summary>
    public static ImageDataset ReadDetection(IDataView data, CnnTrainerOptions options, int stride, out int classCount, out TensorShape imageShape)
    {
        var featureColumn = FeatureColumn(data.Schema, options.FeatureColumnName);
        imageShape = ImageShape(options, (VectorDataViewType)featureColumn.Type);
        var shape = imageShape;
        if (shape[1] % stride != 0 || shape[2] % stride != 0)
            throw new ArgumentOutOfRangeException(nameof(data), $"Images of '{options.FeatureColumnName}' are {shape}; a detector of output stride " +
                $"{stride} needs heights and widths divisible by {stride} (resize them with ResizeImages).");
        var items = new ItemStore(shape.Length);
        var targets = new List<float>();
        var row = new float[shape.Length];
        var buffer = default(VBuffer<float>);
        var rows = ReadObjects(data, options.LabelColumnName, options.BoundingBoxColumnName, featureColumn, out int classes);
        foreach (var (position, objects, features) in rows)
        {
            features(ref buffer);
            buffer.CopyTo(row);
            foreach (var v in row)
                if (!float.IsFinite(v)) throw new InvalidOperationException($"Row {position}: feature column '{options.FeatureColumnName}' contains {v}; features must be finite.");
            items.Add(row);
            foreach (var o in objects)
                if (o.IsEmpty)
                    throw new InvalidOperationException($"Row {position}: a box of '{options.BoundingBoxColumnName}' is ({o.X0}, {o.Y0}, {o.X1}, " +
                        $"{o.Y1}), which is empty; a detector trains on boxes with x0 < x1 and y0 < y1.");
            targets.AddRange(Data.CenterNet.Encode(objects, classes, shape[1] / stride, shape[2] / stride, stride));
        }
        classCount = classes;
        if (items.Count == 0) throw new InvalidOperationException($"The training data is empty: no rows in '{options.FeatureColumnName}'.");
        return new ImageDataset(shape, items, [.. targets], targets.Count / items.Count);
    }

    /// <summary>Every row's true objects, from a key vector of labels and a vector of four box values per label.</summary>
    public static (List<IReadOnlyList<ObjectBox>> Boxes, int Classes) ReadBoxes(IDataView data, string labelColumnName, string boxColumnName)
    {
        var boxes = new List<IReadOnlyList<ObjectBox>>();
        var rows = ReadObjects(data, labelColumnName, boxColumnName, null, out int classes);
        foreach (var (_, objects, _) in rows) boxes.Add(objects);
        return (boxes, classes);
    }

    /// <summary>Every row's detections: predicted label keys, scores and boxes, one per detection.</summary>
    public static List<IReadOnlyList<Detection>> ReadDetections(IDataView data, string predictedLabelColumnName, string boxColumnName,
        string scoreColumnName)
    {
        var scoreColumn = data.Schema.GetColumnOrNull(scoreColumnName) is { Type: VectorDataViewType { ItemType: NumberDataViewType } } c
            && ((VectorDataViewType)c.Type).ItemType == NumberDataViewType.Single ? c
            : throw new ArgumentOutOfRangeException(nameof(data), $"Score column '{scoreColumnName}' must be a vector of Single (one score per detection).");
        var result = new List<IReadOnlyList<Detection>>();
        var scores = default(VBuffer<float>);
        var rows = ReadObjects(data, predictedLabelColumnName, boxColumnName, scoreColumn, out _);
        foreach (var (position, objects, getScores) in rows)
        {
            getScores(ref scores);
            if (scores.Length != objects.Count)
                throw new InvalidOperationException($"Row {position}: {objects.Count} predicted labels but {scores.Length} scores in '{scoreColumnName}'.");
            var values = scores.DenseValues().ToArray();
            result.Add(objects.Select((o, i) => new Detection(o, values[i])).ToList());
        }
        return result;
    }

    /// <summary>
    /// Walks the rows, pairing the label keys with the boxes (and handing out a getter of one more vector column);
    /// checks one box per label, finite values, x1 ≥ x0 and y1 ≥ y0.
    /// </summary>
    private static IEnumerable<(long Position, List<ObjectBox> Objects, ValueGetter<VBuffer<float>> Extra)> ReadObjects(IDataView data,
        string labelColumnName, string boxColumnName, DataViewSchema.Column? extra, out int classCount)
    {
        var label = data.Schema.GetColumnOrNull(labelColumnName) is { Type: VectorDataViewType { ItemType: KeyDataViewType } } l ? l
            : throw new ArgumentOutOfRangeException(nameof(data), $"Label column '{labelColumnName}' must be a vector of a key type (one key per " +
                $"object), got {data.Schema.GetColumnOrNull(labelColumnName)?.Type.ToString() ?? "no such column"}.");
        var box = data.Schema.GetColumnOrNull(boxColumnName) is { Type: VectorDataViewType { ItemType: NumberDataViewType } } b
            && ((VectorDataViewType)b.Type).ItemType == NumberDataViewType.Single ? b
            : throw new ArgumentOutOfRangeException(nameof(data), $"Bounding-box column '{boxColumnName}' must be a vector of Single (x0, y0, x1, y1 " +
                $"per object), got {data.Schema.GetColumnOrNull(boxColumnName)?.Type.ToString() ?? "no such column"}.");
        classCount = checked((int)((KeyDataViewType)((VectorDataViewType)label.Type).ItemType).Count);
        return Rows(data, label, box, extra, labelColumnName, boxColumnName);

        static IEnumerable<(long, List<ObjectBox>, ValueGetter<VBuffer<float>>)> Rows(IDataView data, DataViewSchema.Column label,
            DataViewSchema.Column box, DataViewSchema.Column? extra, string labelColumnName, string boxColumnName)
        {
            using var cursor = data.GetRowCursor(extra is null ? [label, box] : [label, box, extra.Value]);
            var getLabels = KeyVectorGetter(cursor, label);
            var getBoxes = cursor.GetGetter<VBuffer<float>>(box);
            var getExtra = extra is null ? (ref VBuffer<float> _) => { } : cursor.GetGetter<VBuffer<float>>(extra.Value);
            uint[] keys = [];
            var values = default(VBuffer<float>);
            while (cursor.MoveNext())
            {
                keys = getLabels(keys);
                getBoxes(ref values);
                var v = values.DenseValues().ToArray();
                if (v.Length != 4 * keys.Length)
                    throw new InvalidOperationException($"Row {cursor.Position}: {keys.Length} labels in '{labelColumnName}' need {4 * keys.Length} " +
                        $"box values in '{boxColumnName}' (x0, y0, x1, y1 each), got {v.Length}.");
                var objects = new List<ObjectBox>(keys.Length);
                for (int i = 0; i < keys.Length; i++)
                {
                    if (keys[i] == 0) throw new InvalidOperationException($"Row {cursor.Position}: object {i} of '{labelColumnName}' has a missing key (0).");
                    float x0 = v[4 * i], y0 = v[4 * i + 1], x1 = v[4 * i + 2], y1 = v[4 * i + 3];
                    if (!(float.IsFinite(x0) && float.IsFinite(y0) && float.IsFinite(x1) && float.IsFinite(y1) && x1 >= x0 && y1 >= y0))
                        throw new InvalidOperationException($"Row {cursor.Position}: box {i} of '{boxColumnName}' is ({x0}, {y0}, {x1}, {y1}); " +
                            "expected finite x0 ≤ x1 and y0 ≤ y1.");
                    objects.Add(new ObjectBox((int)keys[i] - 1, x0, y0, x1, y1));
                }
                yield return (cursor.Position, objects, getExtra);
            }
        }
    }

    /// <summary>A known-size key vector column (a mask).</summary>
    private static DataViewSchema.Column MaskColumn(DataViewSchema schema, string name, string role, bool knownSize = true)
    {
        var column = schema.GetColumnOrNull(name)
            ?? throw new ArgumentOutOfRangeException(nameof(schema), $"{role} column '{name}' not found in the input; it has: {string.Join(", ", schema.Select(c => c.Name))}.");
        if (column.Type is not VectorDataViewType { ItemType: KeyDataViewType } vector || knownSize && !vector.IsKnownSize)
            throw new ArgumentOutOfRangeException(nameof(schema), $"{role} column '{name}' must be a {(knownSize ? "known-size " : "")}vector of a key type (one key per pixel), " +
                $"got {column.Type}. Map a mask of class numbers with mlContext.Transforms.Conversion.MapValueToKey(\"{name}\", " +
                "keyOrdinality: ValueToKeyMappingEstimator.KeyOrdinality.ByValue).");
        return column;
    }

    /// <summary>
    /// Reads a key vector column of any raw key type as uints: into the array given when the row has its length,
    /// into a new one otherwise; returns the array read into.
    /// </summary>
    private static Func<uint[], uint[]> KeyVectorGetter(DataViewRowCursor cursor, DataViewSchema.Column column)
    {
        var raw = ((KeyDataViewType)((VectorDataViewType)column.Type).ItemType).RawType;
        if (raw == typeof(uint)) return Read<uint>(cursor, column, v => v);
        if (raw == typeof(ushort)) return Read<ushort>(cursor, column, v => v);
        if (raw == typeof(byte)) return Read<byte>(cursor, column, v => v);
        return Read<ulong>(cursor, column, v => checked((uint)v));

        static Func<uint[], uint[]> Read<T>(DataViewRowCursor cursor, DataViewSchema.Column column, Func<T, uint> widen)
        {
            var getter = cursor.GetGetter<VBuffer<T>>(column);
            var buffer = default(VBuffer<T>);
            return destination =>
            {
                getter(ref buffer);
                if (destination.Length != buffer.Length) destination = new uint[buffer.Length];
                Array.Clear(destination);
                foreach (var (index, value) in buffer.Items()) destination[index] = widen(value);
                return destination;
            };
        }
    }

    /// <summary>Reads features and a Single label for regression.</summary>
    public static ImageDataset ReadRegression(IDataView data, CnnTrainerOptions options, out TensorShape imageShape)
    {
        var featureColumn = FeatureColumn(data.Schema, options.FeatureColumnName);
        var labelColumn = data.Schema.GetColumnOrNull(options.LabelColumnName)
            ?? throw new ArgumentOutOfRangeException(nameof(data), $"Label column '{options.LabelColumnName}' not found in the input.");
        if (labelColumn.Type != NumberDataViewType.Single)
            throw new ArgumentOutOfRangeException(nameof(data), $"Label column '{options.LabelColumnName}' must be Single for regression, got {labelColumn.Type}.");
        imageShape = ImageShape(options, (VectorDataViewType)featureColumn.Type);
        var items = new ItemStore(imageShape.Length);
        var labels = new List<float>();
        using var cursor = data.GetRowCursor([featureColumn, labelColumn]);
        var getFeatures = cursor.GetGetter<VBuffer<float>>(featureColumn);
        var getLabel = cursor.GetGetter<float>(labelColumn);
        var buffer = default(VBuffer<float>);
        var row = new float[imageShape.Length];
        float label = 0;
        while (cursor.MoveNext())
        {
            getLabel(ref label);
            if (!float.IsFinite(label)) throw new InvalidOperationException($"Row {cursor.Position}: label column '{options.LabelColumnName}' is {label}; labels must be finite.");
            ReadRow(getFeatures, ref buffer, row, options.FeatureColumnName, cursor.Position);
            items.Add(row);
            labels.Add(label);
        }
        if (labels.Count == 0) throw new InvalidOperationException($"The training data is empty: no rows in '{options.FeatureColumnName}'.");
        return new ImageDataset(imageShape, items, [.. labels]);
    }

    /// <summary>The feature column, which must be a known-size vector of Single (or, where allowed, an image).</summary>
    public static DataViewSchema.Column FeatureColumn(DataViewSchema schema, string name, bool allowImages = false)
    {
        var column = schema.GetColumnOrNull(name)
            ?? throw new ArgumentOutOfRangeException(nameof(schema), $"Feature column '{name}' not found in the input; it has: {string.Join(", ", schema.Select(c => c.Name))}.");
        if (allowImages && ImageInput.IsImage(column.Type)) return column;
        if (column.Type is not VectorDataViewType { ItemType: NumberDataViewType n, IsKnownSize: true } || n != NumberDataViewType.Single)
            throw new ArgumentOutOfRangeException(nameof(schema),
                $"Feature column '{name}' must be a known-size vector of Single{(allowImages ? " or an image (LoadImages)" : "")}, got {column.Type}.");
        return column;
    }

    private static void ReadRow(ValueGetter<VBuffer<float>> getter, ref VBuffer<float> buffer, float[] row, string column, long position)
    {
        getter(ref buffer);
        buffer.CopyTo(row);
        foreach (var v in row)
            if (!float.IsFinite(v)) throw new InvalidOperationException($"Row {position}: feature column '{column}' contains {v}; features must be finite.");
    }

    /// <summary>Key columns come in several raw types; read any of them as a uint.</summary>
    private static Func<uint> KeyGetter(DataViewRowCursor cursor, DataViewSchema.Column column)
    {
        var raw = ((KeyDataViewType)column.Type).RawType;
        if (raw == typeof(uint)) { var g = cursor.GetGetter<uint>(column); uint v = 0; return () => { g(ref v); return v; }; }
        if (raw == typeof(ushort)) { var g = cursor.GetGetter<ushort>(column); ushort v = 0; return () => { g(ref v); return v; }; }
        if (raw == typeof(byte)) { var g = cursor.GetGetter<byte>(column); byte v = 0; return () => { g(ref v); return v; }; }
        var g64 = cursor.GetGetter<ulong>(column);
        ulong v64 = 0;
        return () => { g64(ref v64); return checked((uint)v64); };
    }
}
