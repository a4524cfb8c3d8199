using ILGPU;
using ILGPU.Runtime;

namespace Ml.Cnn.Gpu;

/// <summary>
/// The accelerators ILGPU can see on this machine (CUDA devices, plus ILGPU's CPU simulator): what hardware a machine
/// offers <see cref="GpuBackend"/>.
/// </summary>
public static class GpuAccelerators
{
    /// <summary>Describes each device as "type: name (memory MiB)".</summary>
    public static IReadOnlyList<string> Describe()
    {
        using var context = Context.Create(builder => builder.Default());
        return context.Devices
            .Select(d => $"{d.AcceleratorType}: {d.Name} ({d.MemorySize / (1024 * 1024)} MiB)")
            .ToList();
    }
}
