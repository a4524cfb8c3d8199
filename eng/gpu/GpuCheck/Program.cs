using System.Diagnostics;
using System.Reflection;
using Ml.Cnn.Tests.Support;
using Xunit;
using Xunit.Sdk;

// On a machine with the NVIDIA driver but no .NET SDK:
//   GpuCheck tests [DEVICE] [FILTER]   every test of the GPU collection, its backend on CUDA device DEVICE (default 0;
//                                      "cpu" keeps ILGPU's CPU accelerator, to try this runner anywhere)
//   GpuCheck bench ARGS...             eng/Ml.Cnn.Bench with ARGS (e.g. networks 64 32 --cuda 0)
// A small xUnit runner: facts and theories (inline and member data) of the classes in the GPU collection, each case on
// a new instance, as xUnit runs them; the exit code is the number of failures (at most 255).
if (args.Length > 0 && args[0] == "bench")
    return (int)(Assembly.Load("Ml.Cnn.Bench").EntryPoint!.Invoke(null, [args[1..]]) ?? 0);
if (args.Length == 0 || args[0] != "tests")
{
    Console.Error.WriteLine("usage: GpuCheck tests [DEVICE|cpu] [FILTER] | GpuCheck bench ARGS...");
    return 2;
}
string device = args.Length > 1 ? args[1] : "0";
string filter = args.Length > 2 ? args[2] : "";
if (device != "cpu") Environment.SetEnvironmentVariable(TestBackends.CudaDeviceVariable, device);
var backend = (Ml.Cnn.Gpu.GpuBackend)TestBackends.Create("gpu-on-cpu");
Console.WriteLine($"GPU backend: {backend.Name}; products: {backend.GemmLibrary}");

var classes = typeof(TestBackends).Assembly.GetTypes()
    .Where(t => t is { IsClass: true, IsAbstract: false, IsPublic: true } && t.GetCustomAttributesData().Any(a =>
        a.AttributeType == typeof(CollectionAttribute) && (string?)a.ConstructorArguments[0].Value == TestBackends.GpuCollection))
    .OrderBy(t => t.Name);
int passed = 0, failed = 0, skipped = 0;
var clock = Stopwatch.StartNew();
foreach (var type in classes)
    foreach (var method in type.GetMethods().Where(m => m.GetCustomAttribute<FactAttribute>() is not null).OrderBy(m => m.Name))
    {
        var fact = method.GetCustomAttribute<FactAttribute>()!;
        var cases = method.GetCustomAttributes<DataAttribute>().SelectMany(d => d.GetData(method)).ToList();
        if (cases.Count == 0 && method.GetParameters().Length == 0) cases.Add([]);
        foreach (var arguments in cases)
        {
            string name = $"{type.Name}.{method.Name}({string.Join(", ", arguments.Select(Describe))})";
            if (!name.Contains(filter, StringComparison.OrdinalIgnoreCase)) continue;
            if (fact.Skip is not null) { skipped++; Console.WriteLine($"SKIP {name}: {fact.Skip}"); continue; }
            var caseClock = Stopwatch.StartNew();
            try
            {
                var instance = Activator.CreateInstance(type);
                try
                {
                    var result = method.Invoke(instance, Convert(arguments, method.GetParameters()));
                    if (result is Task task) task.GetAwaiter().GetResult();
                }
                finally
                {
                    (instance as IDisposable)?.Dispose();
                }
                passed++;
                Console.WriteLine($"PASS {name} [{caseClock.Elapsed.TotalSeconds:F1} s]");
            }
            catch (Exception e)
            {
                failed++;
                var cause = e is TargetInvocationException { InnerException: { } inner } ? inner : e;
                Console.WriteLine($"FAIL {name} [{caseClock.Elapsed.TotalSeconds:F1} s]: {cause.GetType().Name}: {cause.Message}");
            }
        }
    }
Console.WriteLine($"{passed} passed, {failed} failed, {skipped} skipped in {clock.Elapsed.TotalSeconds:F0} s " +
    $"(GPU backend on {(device == "cpu" ? "ILGPU's CPU accelerator" : $"CUDA device {device}")})");
return Math.Min(failed, 255);

static string Describe(object? value) => value switch
{
    null => "null",
    Array array => $"[{string.Join(", ", array.Cast<object?>().Select(Describe))}]",
    string text => $"\"{text}\"",
    _ => System.Convert.ToString(value, System.Globalization.CultureInfo.InvariantCulture) ?? "",
};

// xUnit's conversions that the suite's data needs: numbers to the parameter's numeric type.
static object?[] Convert(object?[] arguments, ParameterInfo[] parameters) => arguments.Select((a, i) =>
    a is IConvertible && parameters[i].ParameterType.IsPrimitive && a.GetType() != parameters[i].ParameterType
        ? System.Convert.ChangeType(a, parameters[i].ParameterType, System.Globalization.CultureInfo.InvariantCulture) : a).ToArray();
