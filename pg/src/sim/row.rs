//! The simulated database's values on the wire: parameters are read, and
//! rows written, in PostgreSQL's binary format through the same `ToSql` and
//! `FromSql` the real connection uses, so the client code decodes a
//! simulated row with the very calls that decode a real one.

use crate::error::Error;
use crate::store::Param;
use bytes::BytesMut;
use tokio_postgres::types::{FromSqlOwned, IsNull, ToSql, Type};

/// One returned row: each column's type and binary value (`None`: NULL).
#[derive(Clone, Debug)]
pub struct Row {
    cells: Vec<(Type, Option<Vec<u8>>)>,
}

impl Row {
    /// A row of `cells`, each encoded as its type.
    pub(crate) fn of(cells: &[(&(dyn ToSql + Sync), Type)]) -> Result<Row, Error> {
        let cells = cells
            .iter()
            .map(|(value, ty)| Ok((ty.clone(), encode(*value, ty)?)))
            .collect::<Result<_, Error>>()?;
        Ok(Row { cells })
    }

    /// Column `index`, decoded as `T` (named `name` in errors).
    pub(crate) fn get<T: FromSqlOwned>(
        &self,
        index: usize,
        name: &'static str,
    ) -> Result<T, Error> {
        let refused = |why: String| Error::Schema(format!("simulated column {name}: {why}"));
        let (ty, value) = self
            .cells
            .get(index)
            .ok_or_else(|| refused("no such column".into()))?;
        if !T::accepts(ty) {
            return Err(refused(format!("{ty} is not the type asked for")));
        }
        match value {
            Some(raw) => T::from_sql(ty, raw),
            None => T::from_sql_null(ty),
        }
        .map_err(|e| refused(e.to_string()))
    }
}

/// `value` in the binary format of `ty`, `None` for NULL.
pub(crate) fn encode(value: &(dyn ToSql + Sync), ty: &Type) -> Result<Option<Vec<u8>>, Error> {
    let mut out = BytesMut::new();
    match value.to_sql_checked(ty, &mut out) {
        Ok(IsNull::No) => Ok(Some(out.to_vec())),
        Ok(IsNull::Yes) => Ok(None),
        Err(e) => Err(Error::Schema(format!("simulated parameter of {ty}: {e}"))),
    }
}

/// The parameters of one statement, encoded when it is sent (so that a
/// statement the simulator applies later keeps them), decoded by position.
#[derive(Clone, Debug)]
pub(crate) struct Params {
    values: Vec<(Type, Option<Vec<u8>>)>,
}

impl Params {
    /// `params`, each encoded as its type in `types`.
    pub(crate) fn encode(types: &[Type], params: &[Param<'_>]) -> Result<Params, Error> {
        if types.len() != params.len() {
            return Err(Error::Schema(format!(
                "simulated statement: {} types for {} parameters",
                types.len(),
                params.len()
            )));
        }
        let values = params
            .iter()
            .zip(types)
            .map(|(value, ty)| Ok((ty.clone(), encode(*value, ty)?)))
            .collect::<Result<_, Error>>()?;
        Ok(Params { values })
    }

    /// Parameter `$n` (1-based) as its binary value: the id's key.
    pub(crate) fn raw(&self, n: usize) -> Result<Vec<u8>, Error> {
        self.at(n)?
            .1
            .clone()
            .ok_or_else(|| Error::Schema(format!("simulated ${n} is NULL")))
    }

    /// Parameter `$n` decoded as `T`.
    pub(crate) fn get<T: FromSqlOwned>(&self, n: usize) -> Result<T, Error> {
        let (ty, raw) = self.at(n)?;
        match raw {
            Some(raw) => T::from_sql(ty, raw),
            None => T::from_sql_null(ty),
        }
        .map_err(|e| Error::Schema(format!("simulated ${n}: {e}")))
    }

    fn at(&self, n: usize) -> Result<&(Type, Option<Vec<u8>>), Error> {
        n.checked_sub(1)
            .and_then(|i| self.values.get(i))
            .ok_or_else(|| Error::Schema(format!("simulated statement has no ${n}")))
    }
}
