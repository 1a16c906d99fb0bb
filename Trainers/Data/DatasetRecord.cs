namespace QuantPeft.Trainers.Data;

/// <summary>Which of the three JSONL shapes a record has.</summary>
public enum RecordKind
{
    /// <summary><c>{"text": ...}</c>: every token is trained on.</summary>
    Text,
    /// <summary><c>{"prompt": ..., "completion": ...}</c>: only the completion is trained on.</summary>
    PromptCompletion,
    /// <summary><c>{"messages": [{"role", "content"}, ...]}</c>: only assistant turns are trained on.</summary>
    Messages,
}

/// <summary>One validated line of a JSONL dataset.</summary>
public sealed record DatasetRecord
{
    /// <summary>The shape of the record.</summary>
    public required RecordKind Kind { get; init; }

    /// <summary>The <c>text</c> field (<see cref="RecordKind.Text"/>).</summary>
    public string? Text { get; init; }

    /// <summary>The <c>prompt</c> field (<see cref="RecordKind.PromptCompletion"/>).</summary>
    public string? Prompt { get; init; }

    /// <summary>The <c>completion</c> field (<see cref="RecordKind.PromptCompletion"/>).</summary>
    public string? Completion { get; init; }

    /// <summary>The <c>messages</c> field (<see cref="RecordKind.Messages"/>).</summary>
    public IReadOnlyList<ChatMessage>? Messages { get; init; }

    /// <summary>1-based line number in the source file, 0 for records built in code.</summary>
    public int Line { get; init; }

    /// <summary>A plain-text record.</summary>
    public static DatasetRecord FromText(string text) => new() { Kind = RecordKind.Text, Text = text };

    /// <summary>A prompt/completion record.</summary>
    public static DatasetRecord FromPromptCompletion(string prompt, string completion) =>
        new() { Kind = RecordKind.PromptCompletion, Prompt = prompt, Completion = completion };

    /// <summary>A conversation record.</summary>
    public static DatasetRecord FromMessages(IReadOnlyList<ChatMessage> messages) => new() { Kind = RecordKind.Messages, Messages = messages };
}
