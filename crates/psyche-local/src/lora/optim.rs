//! The optimiser (AdamW) and the learning-rate schedule (linear warmup, linear decay).

use candle_core::{Tensor, Var};

use crate::LocalError;

pub(super) struct AdamW {
    m: Vec<Tensor>,
    v: Vec<Tensor>,
    t: i32,
    beta1: f64,
    beta2: f64,
    eps: f64,
    weight_decay: f64,
}

impl AdamW {
    pub(super) fn new(vars: &[&Var], weight_decay: f64) -> Result<Self, LocalError> {
        let zeros = |v: &&Var| v.as_tensor().zeros_like();
        Ok(Self {
            m: vars.iter().map(zeros).collect::<candle_core::Result<_>>()?,
            v: vars.iter().map(zeros).collect::<candle_core::Result<_>>()?,
            t: 0,
            beta1: 0.9,
            beta2: 0.999,
            eps: 1e-8,
            weight_decay,
        })
    }

    pub(super) fn step(
        &mut self,
        vars: &[&Var],
        grads: &[Tensor],
        lr: f64,
    ) -> Result<(), LocalError> {
        self.t += 1;
        let c1 = 1.0 - self.beta1.powi(self.t);
        let c2 = 1.0 - self.beta2.powi(self.t);
        for (i, (var, g)) in vars.iter().zip(grads).enumerate() {
            let m = ((&self.m[i] * self.beta1)? + (g * (1.0 - self.beta1))?)?;
            let v = ((&self.v[i] * self.beta2)? + (g.sqr()? * (1.0 - self.beta2))?)?;
            let update = ((&m / c1)? / ((&v / c2)?.sqrt()? + self.eps)?)?;
            let theta = var.as_tensor();
            let decayed = (theta * (1.0 - lr * self.weight_decay))?;
            var.set(&(decayed - (update * lr)?)?)?;
            self.m[i] = m;
            self.v[i] = v;
        }
        Ok(())
    }
}

pub(super) fn lr_at(step: usize, total: usize, warmup: usize, peak: f64) -> f64 {
    if step < warmup {
        peak * (step + 1) as f64 / (warmup + 1) as f64
    } else {
        let left = total.saturating_sub(step) as f64;
        let span = total.saturating_sub(warmup).max(1) as f64;
        peak * left / span
    }
}
