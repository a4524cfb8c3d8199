using ILGPU;
using ILGPU.Runtime;

namespace Ml.Cnn.Gpu;

/// <summary>
/// The accelerators ILGPU can see on this machine (CUDA devices, plus ILGPU's CPU simulator). The GPU backend that
/// implements <c>Ml.Cnn.Backends.IBackend</c> on these devices is not written yet; this is the discovery step it
/// will start from, usable today to report what hardware a machine offers.
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
