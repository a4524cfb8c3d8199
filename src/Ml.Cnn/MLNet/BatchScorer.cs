using Microsoft.ML;
using Microsoft.ML.Data;

namespace Ml.Cnn.MLNet;

/// <summary>
/// Turns a float vector column into appended output columns, a batch of rows at a time: the shared engine of the
/// CNN scorers, the featurizer and KNN. <see cref="Score"/> maps <c>count</c> input vectors to raw output vectors.
/// </summary>
internal sealed class BatchScorer(string inputColumn, int inputSize, int outputSize, IReadOnlyList<OutputColumn> columns,
    Action<float[], int, float[]> score, int batchSize = 256, IReadOnlyList<int>? inputDimensions = null)
{
    public string InputColumn { get; } = inputColumn;
    public int InputSize { get; } = inputSize;
    public int OutputSize { get; } = outputSize;
    public IReadOnlyList<OutputColumn> Columns { get; } = columns;
    public int BatchSize { get; } = batchSize;

    /// <summary>
    /// Runs the model (a CNN serializes its own runs: its network reuses activation buffers). Outputs that are NaN or infinite
    /// (inputs far outside the training range overflow the network) are reported, not passed on as scores.
    /// </summary>
    public void Score(float[] inputs, int count, float[] outputs)
    {
        score(inputs, count, outputs);
        for (int i = 0; i < count * OutputSize; i++)
            if (!float.IsFinite(outputs[i]))
                throw new InvalidOperationException(
                    $"The model's output for a row of feature column '{InputColumn}' is {outputs[i]}: its values are outside what the model can score (the training data's range?).");
    }

    /// <summary>Throws unless <paramref name="schema"/> has the input column as a float vector of the right size.</summary>
    public DataViewSchema.Column CheckInput(DataViewSchema schema)
    {
        var column = schema.GetColumnOrNull(InputColumn)
            ?? throw new ArgumentOutOfRangeException(nameof(schema), $"Feature column '{InputColumn}' not found in the input; it has: {string.Join(", ", schema.Select(c => c.Name))}.");
        if (column.Type is not VectorDataViewType { ItemType: NumberDataViewType n } vector || n != NumberDataViewType.Single || vector.Size != InputSize)
            throw new ArgumentOutOfRangeException(nameof(schema),
                $"Feature column '{InputColumn}' must be a vector of {InputSize} Single values (the model's input), got {column.Type}.");
        // Same size, other layout (a 48×36 image where the model was trained on 36×48, or interleaved pixels): scores
        // of garbage. A column without dimensions cannot say, and is taken as it comes.
        var dims = ((VectorDataViewType)column.Type).Dimensions;
        if (inputDimensions is not null && dims.Length > 1 && !dims.SequenceEqual(inputDimensions))
            throw new ArgumentOutOfRangeException(nameof(schema),
                $"Feature column '{InputColumn}' has dimensions [{string.Join(", ", dims)}] but the model was trained on [{string.Join(", ", inputDimensions)}] (channels × height × width).");
        return column;
    }

    /// <summary>The input schema with the output columns appended.</summary>
    public DataViewSchema OutputSchema(DataViewSchema input)
    {
        CheckInput(input);
        var builder = new DataViewSchema.Builder();
        builder.AddColumns(input);
        foreach (var c in Columns) builder.AddColumn(c.Name, c.Type, c.Annotations);
        return builder.ToSchema();
    }

    /// <summary>Reads one row's feature vector into <paramref name="destination"/>, rejecting NaN and infinities.</summary>
    public void ReadFeatures(ValueGetter<VBuffer<float>> getter, ref VBuffer<float> buffer, Span<float> destination, long row)
    {
        getter(ref buffer);
        if (buffer.Length != InputSize)
            throw new InvalidOperationException($"Row {row}: feature column '{InputColumn}' has {buffer.Length} values, expected {InputSize}.");
        buffer.CopyTo(destination);
        foreach (var v in destination)
            if (!float.IsFinite(v))
                throw new InvalidOperationException($"Row {row}: feature column '{InputColumn}' contains {v}; features must be finite.");
    }
}

/// <summary>A lazily scored view: the input's rows with the scorer's columns appended.</summary>
internal sealed class ScoredDataView : IDataView
{
    private readonly IDataView _input;
    private readonly BatchScorer _scorer;

    public ScoredDataView(IDataView input, BatchScorer scorer)
    {
        _input = input;
        _scorer = scorer;
        Schema = scorer.OutputSchema(input.Schema);
    }

    public bool CanShuffle => false;

    public DataViewSchema Schema { get; }

    public long? GetRowCount() => _input.GetRowCount();

    public DataViewRowCursor GetRowCursor(IEnumerable<DataViewSchema.Column> columnsNeeded, Random? rand = null)
    {
        var needed = columnsNeeded.ToList();
        int inputCount = _input.Schema.Count;
        var activeOutputs = new bool[_scorer.Columns.Count];
        foreach (var c in needed.Where(c => c.Index >= inputCount)) activeOutputs[c.Index - inputCount] = true;
        var inputColumns = needed.Where(c => c.Index < inputCount).Select(c => _input.Schema[c.Index]);
        var main = _input.GetRowCursor(inputColumns);
        // A second cursor reads only the features, a batch ahead of the main one; both see rows in the same order.
        var ahead = activeOutputs.Any(a => a) ? _input.GetRowCursor([_scorer.CheckInput(_input.Schema)]) : null;
        return new Cursor(this, main, ahead, activeOutputs);
    }

    public DataViewRowCursor[] GetRowCursorSet(IEnumerable<DataViewSchema.Column> columnsNeeded, int n, Random? rand = null) =>
        [GetRowCursor(columnsNeeded, rand)];

    private sealed class Cursor : DataViewRowCursor
    {
        private readonly ScoredDataView _view;
        private readonly DataViewRowCursor _main;
        private readonly DataViewRowCursor? _ahead;
        private readonly ValueGetter<VBuffer<float>>? _features;
        private readonly bool[] _activeOutputs;
        private readonly float[] _inputs, _outputs;
        private VBuffer<float> _buffer;
        private int _index, _count;

        public Cursor(ScoredDataView view, DataViewRowCursor main, DataViewRowCursor? ahead, bool[] activeOutputs)
        {
            _view = view;
            _main = main;
            _ahead = ahead;
            _activeOutputs = activeOutputs;
            var scorer = view._scorer;
            _inputs = ahead is null ? [] : new float[scorer.BatchSize * scorer.InputSize];
            _outputs = ahead is null ? [] : new float[scorer.BatchSize * scorer.OutputSize];
            _features = ahead?.GetGetter<VBuffer<float>>(view._input.Schema[scorer.InputColumn]);
        }

        public override DataViewSchema Schema => _view.Schema;
        public override long Position => _main.Position;
        public override long Batch => _main.Batch;
        public override ValueGetter<DataViewRowId> GetIdGetter() => _main.GetIdGetter();

        public override bool IsColumnActive(DataViewSchema.Column column)
        {
            int inputCount = _view._input.Schema.Count;
            return column.Index < inputCount ? _main.IsColumnActive(_view._input.Schema[column.Index]) : _activeOutputs[column.Index - inputCount];
        }

        public override ValueGetter<TValue> GetGetter<TValue>(DataViewSchema.Column column)
        {
            int inputCount = _view._input.Schema.Count;
            if (column.Index < inputCount) return _main.GetGetter<TValue>(_view._input.Schema[column.Index]);
            if (!_activeOutputs[column.Index - inputCount]) throw new InvalidOperationException($"Column '{column.Name}' was not requested from this cursor.");
            var getter = _view._scorer.Columns[column.Index - inputCount].CreateGetter(CurrentOutput);
            return getter as ValueGetter<TValue>
                ?? throw new InvalidOperationException($"Column '{column.Name}' has type {column.Type}, not {typeof(TValue).Name}.");
        }

        private ReadOnlyMemory<float> CurrentOutput()
        {
            if (_main.Position < 0) throw new InvalidOperationException("The cursor is not on a row.");
            return _outputs.AsMemory(_index * _view._scorer.OutputSize, _view._scorer.OutputSize);
        }

        public override bool MoveNext()
        {
            if (!_main.MoveNext()) return false;
            if (_ahead is not null && ++_index >= _count) FillBatch();
            return true;
        }

        private void FillBatch()
        {
            var scorer = _view._scorer;
            // The batch becomes current only once scored, so a row that fails to read leaves no stale outputs behind.
            _count = 0;
            _index = 0;
            int read = 0;
            while (read < scorer.BatchSize && _ahead!.MoveNext())
            {
                scorer.ReadFeatures(_features!, ref _buffer, _inputs.AsSpan(read * scorer.InputSize, scorer.InputSize), _ahead.Position);
                read++;
            }
            if (read == 0) throw new InvalidOperationException("The feature cursor ended before the main cursor; the input view is not deterministic.");
            scorer.Score(_inputs, read, _outputs);
            _count = read;
        }

        protected override void Dispose(bool disposing)
        {
            if (disposing)
            {
                _main.Dispose();
                _ahead?.Dispose();
            }
            base.Dispose(disposing);
        }
    }
}

/// <summary>Scores one row at a time for PredictionEngine.</summary>
internal sealed class ScoringRowMapper : IRowToRowMapper
{
    private readonly BatchScorer _scorer;

    public ScoringRowMapper(DataViewSchema inputSchema, BatchScorer scorer)
    {
        _scorer = scorer;
        InputSchema = inputSchema;
        OutputSchema = scorer.OutputSchema(inputSchema);
    }

    public DataViewSchema InputSchema { get; }
    public DataViewSchema OutputSchema { get; }

    public IEnumerable<DataViewSchema.Column> GetDependencies(IEnumerable<DataViewSchema.Column> dependingColumns)
    {
        var result = new List<DataViewSchema.Column>();
        foreach (var c in dependingColumns)
        {
            if (c.Index < InputSchema.Count) result.Add(InputSchema[c.Index]);
            else result.Add(_scorer.CheckInput(InputSchema));
        }
        return result.DistinctBy(c => c.Index);
    }

    public DataViewRow GetRow(DataViewRow input, IEnumerable<DataViewSchema.Column> activeColumns) =>
        new Row(this, input, activeColumns.Select(c => c.Index).ToHashSet());

    private sealed class Row(ScoringRowMapper mapper, DataViewRow input, HashSet<int> active) : DataViewRow
    {
        private readonly float[] _inputs = new float[mapper._scorer.InputSize];
        private readonly float[] _outputs = new float[mapper._scorer.OutputSize];
        private VBuffer<float> _buffer;
        private long _scoredPosition = -1;

        private BatchScorer Scorer => mapper._scorer;

        public override DataViewSchema Schema => mapper.OutputSchema;
        public override long Position => input.Position;
        public override long Batch => input.Batch;
        public override ValueGetter<DataViewRowId> GetIdGetter() => input.GetIdGetter();
        public override bool IsColumnActive(DataViewSchema.Column column) => active.Contains(column.Index);

        public override ValueGetter<TValue> GetGetter<TValue>(DataViewSchema.Column column)
        {
            if (column.Index < mapper.InputSchema.Count) return input.GetGetter<TValue>(mapper.InputSchema[column.Index]);
            var features = input.GetGetter<VBuffer<float>>(Scorer.CheckInput(mapper.InputSchema));
            var getter = Scorer.Columns[column.Index - mapper.InputSchema.Count].CreateGetter(() =>
            {
                if (_scoredPosition != input.Position)
                {
                    Scorer.ReadFeatures(features, ref _buffer, _inputs, input.Position);
                    Scorer.Score(_inputs, 1, _outputs);
                    _scoredPosition = input.Position;
                }
                return _outputs;
            });
            return getter as ValueGetter<TValue>
                ?? throw new InvalidOperationException($"Column '{column.Name}' has type {column.Type}, not {typeof(TValue).Name}.");
        }
    }

}
