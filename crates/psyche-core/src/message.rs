//! Chat messages and conversations.
//!
//! The wire shape matches OpenAI chat JSONL (`{"role": "user", "content": "..."}`), so a
//! [`Conversation`] serialises to exactly the `messages` array of a fine-tuning line.

use std::fmt;

use serde::{Deserialize, Serialize};

/// Who speaks a message.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    /// Instructions that frame the whole conversation.
    System,
    /// The human (or the evaluation harness) speaking to the model.
    User,
    /// The model's own turns.
    Assistant,
}

impl Role {
    /// The lower-case wire name (`"system"`, `"user"`, `"assistant"`).
    pub fn as_str(self) -> &'static str {
        match self {
            Role::System => "system",
            Role::User => "user",
            Role::Assistant => "assistant",
        }
    }
}

impl fmt::Display for Role {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One turn of a chat.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct ChatMessage {
    /// Who speaks.
    pub role: Role,
    /// What is said, as plain text.
    pub content: String,
}

impl ChatMessage {
    /// A message with the given role and text.
    pub fn new(role: Role, content: impl Into<String>) -> Self {
        Self {
            role,
            content: content.into(),
        }
    }

    /// A system message.
    pub fn system(content: impl Into<String>) -> Self {
        Self::new(Role::System, content)
    }

    /// A user message.
    pub fn user(content: impl Into<String>) -> Self {
        Self::new(Role::User, content)
    }

    /// An assistant message.
    pub fn assistant(content: impl Into<String>) -> Self {
        Self::new(Role::Assistant, content)
    }
}

/// An ordered list of messages: the input of a generation, or a whole training example.
///
/// Serialises as a plain JSON array of messages.
#[derive(Debug, Clone, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(transparent)]
pub struct Conversation(pub Vec<ChatMessage>);

impl Conversation {
    /// An empty conversation.
    pub fn new() -> Self {
        Self(Vec::new())
    }

    /// A conversation holding one user message.
    pub fn user(content: impl Into<String>) -> Self {
        Self(vec![ChatMessage::user(content)])
    }

    /// Appends a message and returns the conversation (builder style).
    #[must_use]
    pub fn with(mut self, message: ChatMessage) -> Self {
        self.0.push(message);
        self
    }

    /// Appends a message.
    pub fn push(&mut self, message: ChatMessage) {
        self.0.push(message);
    }

    /// The messages in order.
    pub fn messages(&self) -> &[ChatMessage] {
        &self.0
    }

    /// Number of messages.
    pub fn len(&self) -> usize {
        self.0.len()
    }

    /// Whether there are no messages.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// The last message, if any.
    pub fn last(&self) -> Option<&ChatMessage> {
        self.0.last()
    }

    /// The text of the last user message, if any.
    pub fn last_user_text(&self) -> Option<&str> {
        self.0
            .iter()
            .rev()
            .find(|m| m.role == Role::User)
            .map(|m| m.content.as_str())
    }

    /// Splits a training example into its prompt (everything before the final assistant turn)
    /// and that final assistant text. Returns `None` when the last message is not the assistant's.
    pub fn split_last_assistant(&self) -> Option<(Conversation, &str)> {
        match self.0.split_last() {
            Some((last, rest)) if last.role == Role::Assistant => {
                Some((Conversation(rest.to_vec()), last.content.as_str()))
            }
            _ => None,
        }
    }
}

impl From<Vec<ChatMessage>> for Conversation {
    fn from(messages: Vec<ChatMessage>) -> Self {
        Self(messages)
    }
}

impl FromIterator<ChatMessage> for Conversation {
    fn from_iter<I: IntoIterator<Item = ChatMessage>>(iter: I) -> Self {
        Self(iter.into_iter().collect())
    }
}

impl<'a> IntoIterator for &'a Conversation {
    type Item = &'a ChatMessage;
    type IntoIter = std::slice::Iter<'a, ChatMessage>;

    fn into_iter(self) -> Self::IntoIter {
        self.0.iter()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn roles_serialise_lower_case() {
        let json = serde_json::to_string(&ChatMessage::assistant("hi")).unwrap();
        assert_eq!(json, r#"{"role":"assistant","content":"hi"}"#);
    }

    #[test]
    fn split_last_assistant_separates_prompt_and_answer() {
        let conv = Conversation::user("q").with(ChatMessage::assistant("a"));
        let (prompt, answer) = conv.split_last_assistant().unwrap();
        assert_eq!(prompt, Conversation::user("q"));
        assert_eq!(answer, "a");
        assert!(Conversation::user("q").split_last_assistant().is_none());
    }
}
