using TorchSharp.Modules;
using QuantPeft.Optimizers.State;
using static TorchSharp.torch;

namespace QuantPeft.Optimizers;

/// <summary>The update of one parameter and the state it owns (AdamW, GaLore, Natural GaLore).</summary>
internal interface IParameterRule : IDisposable
{
    /// <summary>The parameter's name (state-dict prefix).</summary>
    string Name { get; }

    /// <summary>The parameter this rule updates.</summary>
    Parameter Param { get; }

    /// <summary>The group whose hyperparameters apply.</summary>
    ParamGroup Group { get; }

    /// <summary>How many updates this parameter has had (t after the last update).</summary>
    long Step { get; set; }

    /// <summary>Every state tensor, named by suffix.</summary>
    IReadOnlyList<IStateTensor> StateTensors { get; }

    /// <summary>Applies one update with <paramref name="grad"/>; runs under no_grad with the state resident.</summary>
    void Update(Tensor grad);
}
