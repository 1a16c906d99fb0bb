using QuantPeft.Memory.Planning;

namespace QuantPeft.Trainers.Recipes;

/// <summary>
/// What a method implies for the flags a user leaves out: the optimizer it needs and a learning rate at which it
/// learns. An explicit flag always wins; a contradiction between explicit flags stays an error
/// (<see cref="Strategies.StrategyChecks"/>).
/// </summary>
public static class MethodDefaults
{
    /// <summary>The learning rate of LoRA and of every method not listed in <see cref="LearningRate"/>.</summary>
    public const double BaseLearningRate = 3e-3;

    /// <summary>
    /// The optimizer <paramref name="method"/> runs with when <c>--optimizer</c> is absent: GaLore and Natural GaLore
    /// are optimizers as much as methods, so they imply their own; everything else uses AdamW.
    /// </summary>
    public static OptimizerKind Optimizer(TrainingMethod method) => method switch
    {
        TrainingMethod.Galore => OptimizerKind.Galore,
        TrainingMethod.NaturalGalore => OptimizerKind.NaturalGalore,
        _ => OptimizerKind.AdamW,
    };

    /// <summary>
    /// The peak learning rate <paramref name="method"/> runs with when <c>--lr</c> is absent. VeRA and OSoRA train
    /// only vectors that scale frozen directions, so an update moves the layer far less than a LoRA update at the
    /// same rate; VeRA's paper trains its vectors at rates ten and more times LoRA's. The values are the ones at
    /// which the 40-step demo run's loss falls below 90 % of its first value (docs/strategies.md).
    /// </summary>
    public static double LearningRate(TrainingMethod method) => method switch
    {
        TrainingMethod.Vera => VeraLearningRate,
        TrainingMethod.Osora => OsoraLearningRate,
        _ => BaseLearningRate,
    };

    private const double VeraLearningRate = 3e-2;
    private const double OsoraLearningRate = 3e-2;
}
