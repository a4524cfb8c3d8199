using System.Collections;
using System.Globalization;
using System.Reflection;
using System.Text.Json;
using System.Text.Json.Nodes;

namespace Ml.Cnn.Sweeps;

/// <summary>
/// One hyperparameter's range, shaped like ML.NET's <c>Microsoft.ML.SearchSpace</c> options. Every option maps the
/// unit interval [0, 1] onto its values, so samplers work in one space whatever the parameter's type.
/// </summary>
public abstract class SearchOption
{
    /// <summary>
    /// Sample this parameter only when another parameter, defined before it, has the given value (for example
    /// <c>("Optimizer", "Sgd")</c> for momentum); otherwise the parameter is absent from the trial.
    /// </summary>
    public (string Parameter, object Value)? OnlyWhen { get; init; }

    /// <summary>The value at position <paramref name="unit"/> of [0, 1].</summary>
    public abstract object FromUnit(double unit);

    /// <summary>The position in [0, 1] of a value this option produced.</summary>
    public abstract double ToUnit(object value);

    /// <summary>The values a grid visits: every choice, every integer up to <paramref name="steps"/>, or that many points.</summary>
    public abstract IReadOnlyList<object> GridValues(int steps);

    /// <summary>The value read back from storage (JSON numbers come back as doubles).</summary>
    internal abstract object FromJson(JsonNode node);

    /// <summary>A description that tells two spaces apart (stored with the study).</summary>
    internal abstract string Describe();

    internal string DescribeCondition() => OnlyWhen is { } c ? $" when {c.Parameter}={Parameters.Format(c.Value)}" : "";
}

/// <summary>A choice among values (strings, numbers, booleans or enum values).</summary>
public sealed class ChoiceOption : SearchOption
{
    /// <summary>The choices, in order.</summary>
    public IReadOnlyList<object> Values { get; }

    /// <summary>A choice among <paramref name="values"/>: at least one, no two alike.</summary>
    public ChoiceOption(params object[] values)
    {
        if (values.Length == 0) throw new ArgumentException("A choice needs at least one value.", nameof(values));
        // Storage keeps values as JSON, which has neither null nor NaN nor infinities.
        if (values.Any(v => v is null || v is double d && !double.IsFinite(d) || v is float f && !float.IsFinite(f)))
            throw new ArgumentException($"A choice's values must be non-null and finite: [{string.Join(", ", values.Select(Parameters.Format))}].", nameof(values));
        var formatted = values.Select(Parameters.Format).ToList();
        if (formatted.Distinct().Count() != formatted.Count)
            throw new ArgumentException($"The choices [{string.Join(", ", formatted)}] repeat a value.", nameof(values));
        Values = values;
    }

    /// <inheritdoc/>
    public override object FromUnit(double unit) => Values[Math.Min(Values.Count - 1, (int)(unit * Values.Count))];

    /// <inheritdoc/>
    public override double ToUnit(object value) => (IndexOf(value) + 0.5) / Values.Count;

    /// <inheritdoc/>
    public override IReadOnlyList<object> GridValues(int steps) => Values;

    /// <summary>The index of a value (compared as stored, so 2 and 2L are alike).</summary>
    public int IndexOf(object value) => IndexOfFormatted(Parameters.Format(value));

    private int IndexOfFormatted(string wanted)
    {
        for (int i = 0; i < Values.Count; i++) if (Parameters.Format(Values[i]) == wanted) return i;
        throw new ArgumentException($"{wanted} is not one of the choices [{string.Join(", ", Values.Select(Parameters.Format))}].");
    }

    internal override object FromJson(JsonNode node) => Values[IndexOfFormatted(node.ToJsonString())];

    internal override string Describe() => $"choice[{string.Join(", ", Values.Select(Parameters.Format))}]{DescribeCondition()}";
}

/// <summary>Integers from <see cref="Min"/> to <see cref="Max"/> inclusive, evenly or on a log scale.</summary>
public sealed class UniformIntOption : SearchOption
{
    /// <summary>The smallest value.</summary>
    public int Min { get; }

    /// <summary>The largest value.</summary>
    public int Max { get; }

    /// <summary>Sample the logarithm evenly (for sizes and counts spanning decades); needs Min ≥ 1.</summary>
    public bool LogBase { get; }

    /// <summary>Integers in [<paramref name="min"/>, <paramref name="max"/>].</summary>
    public UniformIntOption(int min, int max, bool logBase = false)
    {
        if (min > max) throw new ArgumentOutOfRangeException(nameof(max), max, $"The range's max {max} is below its min {min}.");
        if (logBase && min < 1) throw new ArgumentOutOfRangeException(nameof(min), min, $"A log-scale range needs min ≥ 1; it is {min}.");
        (Min, Max, LogBase) = (min, max, logBase);
    }

    /// <inheritdoc/>
    public override object FromUnit(double unit)
    {
        // Each integer owns an equal slice of the unit interval (of its logarithm on a log scale).
        double x = LogBase ? Math.Exp(Math.Log(Min) + unit * (Math.Log(Max + 1.0) - Math.Log(Min))) : Min + unit * (Max + 1.0 - Min);
        return Math.Clamp((int)Math.Floor(x), Min, Max);
    }

    /// <inheritdoc/>
    public override double ToUnit(object value)
    {
        double v = Convert.ToDouble(value, CultureInfo.InvariantCulture) + 0.5;
        return LogBase ? (Math.Log(v) - Math.Log(Min)) / (Math.Log(Max + 1.0) - Math.Log(Min)) : (v - Min) / (Max + 1.0 - Min);
    }

    /// <inheritdoc/>
    public override IReadOnlyList<object> GridValues(int steps) =>
        Max - Min + 1 <= steps ? Enumerable.Range(Min, Max - Min + 1).Cast<object>().ToList() : Points(steps, FromUnit);

    internal override object FromJson(JsonNode node) => (int)node.GetValue<double>();

    internal override string Describe() => $"int[{Min}, {Max}{(LogBase ? ", log" : "")}]{DescribeCondition()}";

    internal static IReadOnlyList<object> Points(int steps, Func<double, object> fromUnit) =>
        steps == 1 ? [fromUnit(0.5)] : Enumerable.Range(0, steps).Select(i => fromUnit(i / (steps - 1.0))).Distinct().ToList();
}

/// <summary>Numbers from <see cref="Min"/> to <see cref="Max"/>, evenly or on a log scale (learning rates).</summary>
public sealed class UniformSingleOption : SearchOption
{
    /// <summary>The smallest value.</summary>
    public float Min { get; }

    /// <summary>The largest value.</summary>
    public float Max { get; }

    /// <summary>Sample the logarithm evenly; needs Min &gt; 0.</summary>
    public bool LogBase { get; }

    /// <summary>Numbers in [<paramref name="min"/>, <paramref name="max"/>].</summary>
    public UniformSingleOption(float min, float max, bool logBase = false)
    {
        if (!float.IsFinite(min) || !float.IsFinite(max) || min > max)
            throw new ArgumentOutOfRangeException(nameof(max), max, $"The range [{min}, {max}] must be finite with min ≤ max.");
        if (logBase && min <= 0) throw new ArgumentOutOfRangeException(nameof(min), min, $"A log-scale range needs min > 0; it is {min}.");
        (Min, Max, LogBase) = (min, max, logBase);
    }

    /// <inheritdoc/>
    public override object FromUnit(double unit)
    {
        double x = LogBase ? Math.Exp(Math.Log(Min) + unit * (Math.Log(Max) - Math.Log(Min))) : Min + unit * ((double)Max - Min);
        return Math.Clamp((float)x, Min, Max);
    }

    /// <inheritdoc/>
    public override double ToUnit(object value)
    {
        double v = Convert.ToDouble(value, CultureInfo.InvariantCulture);
        if (Max == Min) return 0.5;
        return LogBase ? (Math.Log(v) - Math.Log(Min)) / (Math.Log(Max) - Math.Log(Min)) : (v - Min) / ((double)Max - Min);
    }

    /// <inheritdoc/>
    public override IReadOnlyList<object> GridValues(int steps) => UniformIntOption.Points(steps, FromUnit);

    internal override object FromJson(JsonNode node) => node.GetValue<float>();

    internal override string Describe() => $"float[{Min.ToString("R", CultureInfo.InvariantCulture)}, " +
        $"{Max.ToString("R", CultureInfo.InvariantCulture)}{(LogBase ? ", log" : "")}]{DescribeCondition()}";
}

/// <summary>
/// The hyperparameters of a sweep, in the order they are sampled (a conditional parameter comes after the one it
/// depends on). Written like ML.NET's: <c>new SearchSpace { ["LearningRate"] = new UniformSingleOption(1e-4f, 0.1f, logBase: true) }</c>.
/// </summary>
public sealed class SearchSpace : IEnumerable<KeyValuePair<string, SearchOption>>
{
    private readonly List<KeyValuePair<string, SearchOption>> _options = [];

    /// <summary>Adds a parameter (or reads one back).</summary>
    public SearchOption this[string name]
    {
        get => _options.FirstOrDefault(o => o.Key == name).Value
            ?? throw new KeyNotFoundException($"The search space has no parameter '{name}' (it has {string.Join(", ", Names)}).");
        set
        {
            ArgumentException.ThrowIfNullOrWhiteSpace(name);
            ArgumentNullException.ThrowIfNull(value, name);
            if (_options.Any(o => o.Key == name)) throw new ArgumentException($"The search space already has a parameter '{name}'.", nameof(name));
            if (value.OnlyWhen is { } c)
            {
                var parent = _options.FirstOrDefault(o => o.Key == c.Parameter).Value
                    ?? throw new ArgumentException($"Parameter '{name}' depends on '{c.Parameter}', which must be defined before it.", nameof(name));
                if (parent is ChoiceOption choice && !choice.Values.Any(v => Parameters.Format(v) == Parameters.Format(c.Value)))
                    throw new ArgumentException($"Parameter '{name}' depends on '{c.Parameter}' = {Parameters.Format(c.Value)}, which is not one of its " +
                        $"choices [{string.Join(", ", choice.Values.Select(Parameters.Format))}].", nameof(name));
            }
            _options.Add(new(name, value));
        }
    }

    /// <summary>The parameters' names, in sampling order.</summary>
    public IEnumerable<string> Names => _options.Select(o => o.Key);

    /// <summary>How many parameters.</summary>
    public int Count => _options.Count;

    /// <summary>Whether <paramref name="option"/>'s condition holds for the parameters sampled so far.</summary>
    internal bool IsActive(SearchOption option, IReadOnlyDictionary<string, object> sampled) =>
        option.OnlyWhen is not { } c || sampled.TryGetValue(c.Parameter, out var v) && Parameters.Format(v) == Parameters.Format(c.Value);

    /// <summary>Samples every active parameter from <paramref name="unit"/>, which gives a position per parameter.</summary>
    internal Parameters FromUnit(Func<string, SearchOption, IReadOnlyDictionary<string, object>, double> unit)
    {
        var values = new Dictionary<string, object>();
        foreach (var (name, option) in _options)
            if (IsActive(option, values)) values[name] = option.FromUnit(Math.Clamp(unit(name, option, values), 0, 1));
        return new Parameters(values);
    }

    /// <summary>One line per parameter: what makes two studies' spaces the same.</summary>
    internal string Describe() => string.Join("; ", _options.Select(o => $"{o.Key}: {o.Value.Describe()}"));

    internal Parameters ReadJson(string json)
    {
        var node = JsonNode.Parse(json)!.AsObject();
        var values = new Dictionary<string, object>();
        foreach (var (name, value) in node)
        {
            var option = _options.FirstOrDefault(o => o.Key == name).Value
                ?? throw new InvalidDataException($"The stored trial has a parameter '{name}' the search space lacks.");
            values[name] = option.FromJson(value!);
        }
        return new Parameters(values);
    }

    /// <inheritdoc/>
    public IEnumerator<KeyValuePair<string, SearchOption>> GetEnumerator() => _options.GetEnumerator();

    IEnumerator IEnumerable.GetEnumerator() => GetEnumerator();
}

/// <summary>The values one trial gives its parameters (a conditional parameter whose condition fails is absent).</summary>
public sealed class Parameters : IReadOnlyDictionary<string, object>
{
    private readonly IReadOnlyDictionary<string, object> _values;

    internal Parameters(IReadOnlyDictionary<string, object> values) => _values = values;

    /// <summary>A parameter's value as <typeparamref name="T"/> (numbers convert; enums parse from their names).</summary>
    public T Get<T>(string name) => (T)Convert(this[name], typeof(T), name);

    /// <summary>A parameter's value, or <paramref name="fallback"/> where the trial does not have it.</summary>
    public T Get<T>(string name, T fallback) => ContainsKey(name) ? Get<T>(name) : fallback;

    /// <summary>
    /// Sets each parameter on the property or field of <paramref name="options"/> with its name (a dotted name such as
    /// <c>Augmentation.CropPadding</c> reaches into a nested object, which must exist), converting numbers and
    /// parsing enum names, as ML.NET's search space maps onto trainer options. Returns <paramref name="options"/>.
    /// </summary>
    public T ApplyTo<T>(T options) where T : class
    {
        foreach (var (name, value) in _values)
        {
            object target = options;
            string[] path = name.Split('.');
            for (int i = 0; i < path.Length; i++)
            {
                var type = target.GetType();
                var property = type.GetProperty(path[i], BindingFlags.Public | BindingFlags.Instance);
                var field = property is null ? type.GetField(path[i], BindingFlags.Public | BindingFlags.Instance) : null;
                if (property is null && field is null)
                    throw new ArgumentException($"Parameter '{name}': {type.Name} has no public property or field '{path[i]}'.");
                var memberType = property?.PropertyType ?? field!.FieldType;
                if (i < path.Length - 1)
                {
                    // Setting a member of a struct would change a boxed copy and be lost.
                    if (memberType.IsValueType) throw new ArgumentException($"Parameter '{name}': {type.Name}.{path[i]} is a value type; its members cannot be set in place.");
                    target = (property is not null ? property.GetValue(target) : field!.GetValue(target))
                        ?? throw new ArgumentException($"Parameter '{name}': {type.Name}.{path[i]} is null; create it before the sweep sets its members.");
                    continue;
                }
                if (property is { CanWrite: false } || field is { IsInitOnly: true })
                    throw new ArgumentException($"Parameter '{name}': {type.Name}.{path[i]} is read-only.");
                object converted = Convert(value, memberType, name);
                if (property is not null) property.SetValue(target, converted); else field!.SetValue(target, converted);
            }
        }
        return options;
    }

    /// <summary>The value as stored and shown: invariant numbers, enum names, JSON-quoted strings.</summary>
    public static string Format(object? value) => value switch
    {
        null => "null",
        string s => JsonSerializer.Serialize(s),
        bool b => b ? "true" : "false",
        Enum e => JsonSerializer.Serialize(e.ToString()),
        float f => f.ToString("R", CultureInfo.InvariantCulture),
        double d => d.ToString("R", CultureInfo.InvariantCulture),
        IFormattable n => n.ToString(null, CultureInfo.InvariantCulture),
        _ => JsonSerializer.Serialize(value.ToString()),
    };

    /// <summary>The parameters as a JSON object (how storage keeps them).</summary>
    public string ToJson() => "{" + string.Join(",", _values.Select(v => $"{JsonSerializer.Serialize(v.Key)}:{Format(v.Value)}")) + "}";

    /// <inheritdoc/>
    public override string ToString() => string.Join(", ", _values.Select(v => $"{v.Key}={(v.Value is string s ? s : Format(v.Value))}"));

    private static object Convert(object value, Type type, string name)
    {
        var target = Nullable.GetUnderlyingType(type) ?? type;
        try
        {
            if (target.IsInstanceOfType(value)) return value;
            if (target.IsEnum) return Enum.Parse(target, value.ToString()!, ignoreCase: false);
            return System.Convert.ChangeType(value, target, CultureInfo.InvariantCulture);
        }
        catch (Exception e) when (e is FormatException or InvalidCastException or ArgumentException or OverflowException)
        {
            throw new ArgumentException($"Parameter '{name}': the value {Format(value)} does not convert to {target.Name}.", e);
        }
    }

    /// <inheritdoc/>
    public object this[string key] => _values.TryGetValue(key, out var v) ? v
        : throw new KeyNotFoundException($"This trial has no parameter '{key}' (it has {string.Join(", ", _values.Keys)}).");

    /// <inheritdoc/>
    public IEnumerable<string> Keys => _values.Keys;

    /// <inheritdoc/>
    public IEnumerable<object> Values => _values.Values;

    /// <inheritdoc/>
    public int Count => _values.Count;

    /// <inheritdoc/>
    public bool ContainsKey(string key) => _values.ContainsKey(key);

    /// <inheritdoc/>
    public bool TryGetValue(string key, out object value) => _values.TryGetValue(key, out value!);

    /// <inheritdoc/>
    public IEnumerator<KeyValuePair<string, object>> GetEnumerator() => _values.GetEnumerator();

    IEnumerator IEnumerable.GetEnumerator() => GetEnumerator();
}
