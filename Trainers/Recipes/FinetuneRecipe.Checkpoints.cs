namespace QuantPeft.Trainers.Recipes;

// Checkpoints that resume exactly (see TrainingCheckpoint): what a run must carry over to continue as if it never
// stopped. The trainable tensors and the optimizer state, the data position (epoch, micro-batch within its seeded
// order), the step (the schedule is a function of it) and the CPU generator.
public sealed partial class FinetuneRecipe
{
    private int _startStep;
    private int _startEpoch;
    private int _startPosition;
    private SortedDictionary<string, string>? _fingerprint;

    /// <summary>The optimizer steps already done when <see cref="Train"/> starts: 0, or the resumed checkpoint's step.</summary>
    public int StartStep => _startStep;

    /// <summary>The checkpoint folder this run resumed from (after <see cref="Setup"/> with <see cref="FinetuneOptions.ResumeFrom"/>), else null.</summary>
    public string? ResumedFrom { get; private set; }

    /// <summary>The checkpoint folders this run has written, in order.</summary>
    public List<string> CheckpointsWritten { get; } = [];

    private SortedDictionary<string, string> Fingerprint => _fingerprint ??= TrainingFingerprint.Of(_options);

    // Restores a checkpoint into the freshly set-up model and optimizer. Refuses one written by a run with other
    // trajectory-deciding options, naming the field, before anything is touched.
    private void Resume(string path)
    {
        string checkpoint = TrainingCheckpoint.Resolve(path);
        var state = TrainingCheckpoint.ReadState(checkpoint);
        if (TrainingFingerprint.FirstDifference(state.Fingerprint, Fingerprint) is string difference)
            throw new RecipeException($"--resume: '{checkpoint}': {difference}");
        int perEpoch = BatchesPerEpoch;
        if (state.BatchesPerEpoch != perEpoch)
            throw new RecipeException($"--resume: '{checkpoint}': the data gives {perEpoch} micro-batches per epoch, the checkpoint was written with {state.BatchesPerEpoch}");
        if (state.Step > _options.Steps)
            throw new RecipeException($"--steps: {_options.Steps} is below the checkpoint's step {state.Step} ('{checkpoint}')");
        TrainingCheckpoint.LoadTensors(checkpoint, Trainable());
        foreach (var c in _components) c.OnResume(Run, state.Step);
        string archive = Path.Combine(checkpoint, TrainingCheckpoint.OptimizerFileName);
        if (!File.Exists(archive)) throw new RecipeException($"--resume: '{checkpoint}': missing {TrainingCheckpoint.OptimizerFileName}");
        QuantPeft.Optimizers.OptimizerStateArchive.Load(Run.Optimizer!, archive);
        TrainingCheckpoint.RestoreRng(state.TorchRngState);
        (_startStep, _startEpoch, _startPosition) = (state.Step, state.Epoch, state.Position);
        _completedSteps = state.Step;
        ResumedFrom = checkpoint;
    }

    private int _completedSteps;

    // After optimizer step `step` (0-based): every SaveEvery steps, a checkpoint in the run folder.
    private void MaybeSaveCheckpoint(int step)
    {
        int done = step + 1;
        _completedSteps = done;
        if (_options.SaveEvery <= 0 || done % _options.SaveEvery != 0) return;
        WriteCheckpoint(done, Path.GetFullPath(_options.RunFolder!));
    }

    /// <summary>
    /// Writes a resumable checkpoint of the state after the last completed optimizer step (the resumed one, or 0,
    /// before <see cref="Train"/>) into <paramref name="runFolder"/> and returns its folder. A run that must stop
    /// between steps (its memory passed the budget) saves this, so that nothing done is lost.
    /// </summary>
    public string SaveCheckpoint(string runFolder)
    {
        if (_run?.Optimizer is null) throw new InvalidOperationException("call Setup first");
        if (CheckpointsWritten.Count > 0 && TrainingCheckpoint.ReadState(CheckpointsWritten[^1]).Step == _completedSteps)
            return CheckpointsWritten[^1];
        return WriteCheckpoint(_completedSteps, runFolder);
    }

    private string WriteCheckpoint(int done, string root)
    {
        int perEpoch = BatchesPerEpoch;
        long consumed = (long)done * _options.GradientAccumulation;
        var state = new CheckpointState(done, _options.Steps, consumed, (int)(consumed / perEpoch), (int)(consumed % perEpoch), perEpoch,
            Run.Optimizer!.Groups[0].Lr, Fingerprint, TrainingCheckpoint.CaptureRng());
        string folder = TrainingCheckpoint.Write(root, state, Trainable(), Run.Optimizer!);
        CheckpointsWritten.Add(folder);
        return folder;
    }

    private int BatchesPerEpoch => _preference?.Data.TrainBatchCount(_options.MicroBatchSize) ?? Data!.TrainBatchCount(_options.MicroBatchSize);

    private List<(string Name, TorchSharp.torch.Tensor Tensor)> Trainable() =>
        [.. Run.Trainable.Select(t => (t.Name, (TorchSharp.torch.Tensor)t.Param))];
}
