using System.Text.Json;
using static TorchSharp.torch;

namespace QuantPeft.Optimizers;

/// <summary>
/// A snapshot of an optimizer's state: named tensors (CPU copies the dict owns) plus a flat map of
/// scalars (step counters, learning rates). The shape is what an archive writer needs: iterate
/// <see cref="Tensors"/> and store <see cref="ScalarsToJson"/> beside them.
/// </summary>
/// <remarks>
/// Tensor names are <c>{parameter name}.{state name}</c>, e.g. <c>model.layers.0.mlp.up_proj.weight.exp_avg</c>,
/// <c>....exp_avg.absmax</c> for 8-bit blocks, <c>....galore.projector</c>. Scalars are keyed the same way
/// (<c>....step</c>) plus <c>optimizer.step</c> and <c>group.{name}.lr</c>.
/// </remarks>
public sealed class OptimizerStateDict : IDisposable
{
    private readonly List<(string Name, Tensor Tensor)> _tensors = [];
    private readonly SortedDictionary<string, double> _scalars = new(StringComparer.Ordinal);

    /// <summary>The named tensors, in a stable order.</summary>
    public IEnumerable<(string Name, Tensor Tensor)> Tensors => _tensors;

    /// <summary>The scalars (counters are stored exactly: all are below 2^53).</summary>
    public IReadOnlyDictionary<string, double> Scalars => _scalars;

    /// <summary>Adds a tensor; the dict takes ownership of <paramref name="tensor"/>.</summary>
    public void AddTensor(string name, Tensor tensor)
    {
        if (_tensors.Any(t => t.Name == name))
            throw new ArgumentException($"state tensor '{name}' added twice", nameof(name));
        _tensors.Add((name, tensor.DetachFromDisposeScope()));
    }

    /// <summary>Sets a scalar.</summary>
    public void SetScalar(string name, double value) => _scalars[name] = value;

    /// <summary>Finds a tensor by name.</summary>
    public bool TryGetTensor(string name, out Tensor tensor)
    {
        foreach (var (n, t) in _tensors)
            if (n == name) { tensor = t; return true; }
        tensor = null!;
        return false;
    }

    /// <summary>Gets a scalar or throws a <see cref="OptimizerConfigException"/> naming the missing key.</summary>
    public double GetScalar(string name) =>
        _scalars.TryGetValue(name, out double v) ? v
            : throw new OptimizerConfigException($"optimizer state: scalar '{name}' is missing");

    /// <summary>The scalars as a small JSON object.</summary>
    public string ScalarsToJson() => JsonSerializer.Serialize(_scalars);

    /// <summary>Rebuilds a dict from stored tensors (ownership moves to the dict) and the JSON of scalars.</summary>
    /// <exception cref="OptimizerConfigException">The JSON is not an object of numbers.</exception>
    public static OptimizerStateDict FromParts(IEnumerable<(string Name, Tensor Tensor)> tensors, string scalarsJson)
    {
        var dict = new OptimizerStateDict();
        Dictionary<string, double>? scalars;
        try { scalars = JsonSerializer.Deserialize<Dictionary<string, double>>(scalarsJson); }
        catch (JsonException e) { throw new OptimizerConfigException($"optimizer state scalars: not a JSON object of numbers ({e.Message})"); }
        foreach (var (k, v) in scalars ?? []) dict.SetScalar(k, v);
        foreach (var (n, t) in tensors) dict.AddTensor(n, t);
        return dict;
    }

    /// <summary>Disposes the tensors the dict owns.</summary>
    public void Dispose()
    {
        foreach (var (_, t) in _tensors) t.Dispose();
        _tensors.Clear();
    }
}
