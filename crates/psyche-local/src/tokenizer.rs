//! The tokenizer built from the GGUF vocabulary, with a per-model fix table, and the chat
//! template rendered with minijinja.
//!
//! candle's GGUF tokenizer builder maps pre-tokenizer names it does not know to a GPT-2
//! byte-level pre-tokenizer *with* a prefix space, which inserts `Ġ` after every special token
//! (`<|im_start|>system` becomes `[1, 817]` instead of llama.cpp's `[1, 9690]`), so chat prompts
//! do not round-trip. [`PRE_TOKENIZER_FIXES`] lists the `tokenizer.ggml.pre` values that get a
//! replacement pre-tokenizer; each is checked against llama.cpp's ids in the tests.

use std::sync::OnceLock;

use candle_core::quantized::gguf_file;
use candle_core::quantized::tokenizer::TokenizerFromGguf;
use psyche_core::{ChatMessage, Conversation, Role};
use tokenizers::pre_tokenizers::byte_level::ByteLevel;
use tokenizers::pre_tokenizers::digits::Digits;
use tokenizers::pre_tokenizers::sequence::Sequence;
use tokenizers::{PreTokenizerWrapper, Tokenizer};

use crate::LocalError;
use crate::config::DefaultSystemPrompt;

/// `tokenizer.ggml.pre` values whose pre-tokenizer this crate replaces, with the replacement.
pub const PRE_TOKENIZER_FIXES: &[(&str, &str)] = &[(
    "smollm",
    "Digits(individual) + ByteLevel(no prefix space, trim offsets, no regex change)",
)];

fn pre_tokenizer_fix(pre: &str) -> Option<PreTokenizerWrapper> {
    match pre {
        "smollm" => Some(
            Sequence::new(vec![
                Digits::new(true).into(),
                ByteLevel::new(false, true, true).into(),
            ])
            .into(),
        ),
        _ => None,
    }
}

const CHATML: &str = "{% for message in messages %}<|im_start|>{{ message.role }}\n{{ message.content }}<|im_end|>\n{% endfor %}{% if add_generation_prompt %}<|im_start|>assistant\n{% endif %}";

/// Tokenizer plus chat template of one GGUF model.
pub(crate) struct ChatTokenizer {
    tokenizer: Tokenizer,
    env: minijinja::Environment<'static>,
    pub(crate) pre: String,
    pub(crate) fix_applied: bool,
    pub(crate) template_from_gguf: bool,
    bos_token: String,
    eos_token: String,
    /// Token ids that end an assistant turn.
    pub(crate) stop_ids: Vec<u32>,
    pub(crate) vocab_size: usize,
    /// The system prompt of conversations that have none.
    pub(crate) default_system: DefaultSystemPrompt,
    texts: OnceLock<Vec<String>>,
}

impl std::fmt::Debug for ChatTokenizer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ChatTokenizer")
            .field("pre", &self.pre)
            .field("fix_applied", &self.fix_applied)
            .field("vocab_size", &self.vocab_size)
            .field("stop_ids", &self.stop_ids)
            .finish_non_exhaustive()
    }
}

fn md_string(ct: &gguf_file::Content, key: &str) -> Option<String> {
    ct.metadata
        .get(key)
        .and_then(|v| v.to_string().ok())
        .cloned()
}

fn md_u32(ct: &gguf_file::Content, key: &str) -> Option<u32> {
    let v = ct.metadata.get(key)?;
    v.to_u32()
        .ok()
        .or_else(|| v.to_i32().ok().map(|x| x as u32))
        .or_else(|| v.to_u64().ok().map(|x| x as u32))
}

impl ChatTokenizer {
    /// Builds the tokenizer and template from GGUF metadata.
    pub(crate) fn from_gguf(ct: &gguf_file::Content) -> Result<Self, LocalError> {
        let mut tokenizer =
            Tokenizer::from_gguf(ct).map_err(|e| LocalError::Tokenizer(e.to_string()))?;
        let pre = md_string(ct, "tokenizer.ggml.pre").unwrap_or_else(|| "gpt2".to_owned());
        let fix = pre_tokenizer_fix(&pre);
        let fix_applied = fix.is_some();
        if let Some(fix) = fix {
            tokenizer.with_pre_tokenizer(Some(fix));
        }
        let vocab_size = tokenizer.get_vocab_size(true);
        let token = |id: Option<u32>| {
            id.and_then(|id| tokenizer.id_to_token(id))
                .unwrap_or_default()
        };
        let bos_id = md_u32(ct, "tokenizer.ggml.bos_token_id");
        let eos_id = md_u32(ct, "tokenizer.ggml.eos_token_id");
        let bos_token = token(bos_id);
        let eos_token = token(eos_id);
        let mut stop_ids: Vec<u32> = eos_id.into_iter().collect();
        for special in ["<|im_end|>", "<|endoftext|>", "<|eot_id|>", "</s>"] {
            if let Some(id) = tokenizer.token_to_id(special)
                && !stop_ids.contains(&id)
            {
                stop_ids.push(id);
            }
        }
        let template = md_string(ct, "tokenizer.chat_template");
        let template_from_gguf = template.is_some();
        let mut env = minijinja::Environment::new();
        env.add_function(
            "raise_exception",
            |msg: String| -> Result<String, minijinja::Error> {
                Err(minijinja::Error::new(
                    minijinja::ErrorKind::InvalidOperation,
                    msg,
                ))
            },
        );
        env.add_template_owned("chat", template.unwrap_or_else(|| CHATML.to_owned()))
            .map_err(|e| {
                LocalError::Template(format!("cannot parse the GGUF chat template: {e}"))
            })?;
        Ok(Self {
            tokenizer,
            env,
            pre,
            fix_applied,
            template_from_gguf,
            bos_token,
            eos_token,
            stop_ids,
            vocab_size,
            default_system: DefaultSystemPrompt::Template,
            texts: OnceLock::new(),
        })
    }

    /// Renders a conversation with the model's chat template, applying
    /// [`DefaultSystemPrompt`] when the conversation has no system message.
    pub(crate) fn render(
        &self,
        messages: &Conversation,
        add_generation_prompt: bool,
    ) -> Result<String, LocalError> {
        let message = |role: &str, content: &str| minijinja::context! { role, content };
        let mut msgs: Vec<minijinja::Value> = messages
            .messages()
            .iter()
            .map(|m| message(m.role.as_str(), &m.content))
            .collect();
        let has_system = messages
            .messages()
            .first()
            .is_some_and(|m| m.role == Role::System);
        match &self.default_system {
            _ if has_system => self.render_values(msgs, add_generation_prompt),
            DefaultSystemPrompt::Template => self.render_values(msgs, add_generation_prompt),
            DefaultSystemPrompt::Custom(text) => {
                msgs.insert(0, message("system", text));
                self.render_values(msgs, add_generation_prompt)
            }
            DefaultSystemPrompt::Omit => {
                // Render with a placeholder system turn, then cut that turn out: what the
                // template prints before the conversation's own messages, less the turn.
                const MARK: &str = "\u{1}psyche-omitted-system\u{1}";
                let turn = self.render_values(vec![message("system", MARK)], false)?;
                msgs.insert(0, message("system", MARK));
                let full = self.render_values(msgs, add_generation_prompt)?;
                let rest = full
                    .strip_prefix(&turn)
                    .filter(|_| turn.contains(MARK))
                    .ok_or_else(|| {
                        LocalError::Template(
                            "default_system_prompt = omit: this chat template does not render \
                             the system turn as a separable prefix"
                                .into(),
                        )
                    })?;
                let bos = if !self.bos_token.is_empty() && turn.starts_with(&self.bos_token) {
                    self.bos_token.as_str()
                } else {
                    ""
                };
                Ok(format!("{bos}{rest}"))
            }
        }
    }

    fn render_values(
        &self,
        msgs: Vec<minijinja::Value>,
        add_generation_prompt: bool,
    ) -> Result<String, LocalError> {
        let tmpl = self
            .env
            .get_template("chat")
            .map_err(|e| LocalError::Template(e.to_string()))?;
        tmpl.render(minijinja::context! {
            messages => msgs,
            add_generation_prompt => add_generation_prompt,
            bos_token => self.bos_token.as_str(),
            eos_token => self.eos_token.as_str(),
        })
        .map_err(|e| LocalError::Template(e.to_string()))
    }

    /// Token ids of raw text (special tokens written in the text are recognised).
    pub(crate) fn encode(&self, text: &str) -> Result<Vec<u32>, LocalError> {
        let enc = self
            .tokenizer
            .encode(text, false)
            .map_err(|e| LocalError::Tokenizer(e.to_string()))?;
        Ok(enc.get_ids().to_vec())
    }

    /// Text of token ids; special tokens are kept when `skip_special` is false.
    pub(crate) fn decode(&self, ids: &[u32], skip_special: bool) -> Result<String, LocalError> {
        self.tokenizer
            .decode(ids, skip_special)
            .map_err(|e| LocalError::Tokenizer(e.to_string()))
    }

    /// The chat prompt's token ids, ready for the assistant's answer.
    pub(crate) fn encode_prompt(&self, messages: &Conversation) -> Result<Vec<u32>, LocalError> {
        if messages.is_empty() {
            return Err(LocalError::Tokenizer(
                "field `messages`: must hold at least one message".into(),
            ));
        }
        self.encode(&self.render(messages, true)?)
    }

    /// Splits a training conversation into prompt ids and the ids of the final assistant turn
    /// up to and including the end-of-turn token.
    pub(crate) fn encode_example(
        &self,
        conv: &Conversation,
    ) -> Result<(Vec<u32>, Vec<u32>), LocalError> {
        let Some((prompt, answer)) = conv.split_last_assistant() else {
            return Err(LocalError::Tokenizer(
                "the last message must be the assistant's".into(),
            ));
        };
        if prompt.is_empty() {
            return Err(LocalError::Tokenizer(
                "the assistant answer needs a prompt before it".into(),
            ));
        }
        let prompt_text = self.render(&prompt, true)?;
        let full_text = self.render(conv, false)?;
        let Some(suffix) = full_text.strip_prefix(&prompt_text) else {
            return Err(LocalError::Template(
                "the rendered conversation does not start with the rendered prompt".into(),
            ));
        };
        debug_assert!(suffix.starts_with(answer) || !answer.is_empty());
        let prompt_ids = self.encode(&prompt_text)?;
        let mut answer_ids = self.encode(suffix)?;
        if let Some(end) = answer_ids.iter().position(|id| self.stop_ids.contains(id)) {
            answer_ids.truncate(end + 1);
        }
        Ok((prompt_ids, answer_ids))
    }

    /// [`encode_example`](Self::encode_example) of `prompt` followed by each assistant answer
    /// in `answers`, with the prompt rendered and tokenized once.
    pub(crate) fn encode_answers(
        &self,
        prompt: &Conversation,
        answers: &[String],
    ) -> Result<(Vec<u32>, Vec<Vec<u32>>), LocalError> {
        if prompt.is_empty() {
            return Err(LocalError::Tokenizer(
                "the assistant answer needs a prompt before it".into(),
            ));
        }
        let prompt_text = self.render(prompt, true)?;
        let prompt_ids = self.encode(&prompt_text)?;
        let mut out = Vec::with_capacity(answers.len());
        for answer in answers {
            let conv = prompt.clone().with(ChatMessage::assistant(answer.clone()));
            let full_text = self.render(&conv, false)?;
            let Some(suffix) = full_text.strip_prefix(&prompt_text) else {
                return Err(LocalError::Template(
                    "the rendered conversation does not start with the rendered prompt".into(),
                ));
            };
            let mut answer_ids = self.encode(suffix)?;
            if let Some(end) = answer_ids.iter().position(|id| self.stop_ids.contains(id)) {
                answer_ids.truncate(end + 1);
            }
            out.push(answer_ids);
        }
        Ok((prompt_ids, out))
    }

    /// The decoded text of every token id (cached).
    pub(crate) fn token_texts(&self) -> &[String] {
        self.texts.get_or_init(|| {
            (0..self.vocab_size as u32)
                .map(|id| self.tokenizer.decode(&[id], false).unwrap_or_default())
                .collect()
        })
    }
}
