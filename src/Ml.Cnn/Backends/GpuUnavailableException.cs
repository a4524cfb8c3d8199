namespace Ml.Cnn.Backends;

/// <summary>
/// No usable GPU: what was looked for (driver, device, the Ml.Cnn.Gpu assembly) and what was found. Thrown by the GPU
/// backend, and by the ML.NET trainers when <c>MLContext.GpuDeviceId</c> is set and <c>FallbackToCpu</c> is false.
/// </summary>
public sealed class GpuUnavailableException(string message, Exception? inner = null) : InvalidOperationException(message, inner);
