"""scikit-learn's estimator conventions, without importing scikit-learn until it is used.

``import sklearn.base`` costs more than pandas, DuckDB and pyarrow together (it loads
scipy.stats), and the engine's own estimators (`RFMScorer`, `SegmentationModel`, the CLV
models) need none of scikit-learn's code to fit and transform. They derive from `Estimator`
(or `Transformer`) here, which implements the conventions of ``sklearn.base.BaseEstimator``
and ``TransformerMixin`` the way scikit-learn does: ``get_params``/``set_params`` from the
``__init__`` signature, nested ``<param>__<sub>`` names, ``clone``-able (scikit-learn's
``clone`` only needs ``get_params``), ``__sklearn_tags__``, ``fit_transform`` and
``set_output``, the fitted state in trailing-underscore attributes, pickling without a
scikit-learn version. So ``sklearn.base.clone``, ``Pipeline``, ``ColumnTransformer``,
``GridSearchCV`` and ``check_estimator`` work with them, but ``isinstance(x, BaseEstimator)``
is False (scikit-learn itself duck-types: ``get_params``, ``fit``, ``__sklearn_tags__``).

One rule, one home: whenever the answer is not the plain case, scikit-learn decides. Input
that is not a 2-D numpy array or DataFrame of real, finite numbers with the fitted columns,
an unfitted estimator, ``get_feature_names_out`` with ``input_features``, an output container
other than pandas: these import scikit-learn and call its own helper (``validate_data``,
``check_is_fitted``, ...), so errors and warnings are scikit-learn's, word for word. The
plain case (what the engine always passes) is computed here with numpy alone.
"""

from __future__ import annotations

import copy
import inspect
import sys
from collections import defaultdict
from typing import Any, Self

import numpy as np
import pandas as pd

__all__ = ["Estimator", "Transformer", "check_is_fitted", "clone", "feature_names_out",
           "validate_data"]


class Estimator:
    """``sklearn.base.BaseEstimator``'s conventions: parameters, repr, clone, tags, pickling.

    ``__init__`` only stores its arguments, under their names; fitted state lives in
    attributes ending with ``_``.
    """

    @classmethod
    def _get_param_names(cls) -> list[str]:
        init = cls.__init__
        if init is object.__init__:
            return []
        parameters = [p for p in inspect.signature(init).parameters.values()
                      if p.name != "self" and p.kind != p.VAR_KEYWORD]
        if any(p.kind == p.VAR_POSITIONAL for p in parameters):
            raise RuntimeError(f"{cls.__name__} must name its parameters in __init__ "
                               "(no *args), the scikit-learn convention.")
        return sorted(p.name for p in parameters)

    def get_params(self, deep: bool = True) -> dict[str, Any]:
        """Get the parameters of this estimator.

        Parameters
        ----------
        deep : bool, default=True
            Also return the parameters of nested estimators, as ``<name>__<parameter>``.

        Returns
        -------
        dict
            Parameter names mapped to their values.
        """
        out: dict[str, Any] = {}
        for key in self._get_param_names():
            value = getattr(self, key)
            if deep and hasattr(value, "get_params") and not isinstance(value, type):
                out.update((f"{key}__{k}", v) for k, v in value.get_params().items())
            out[key] = value
        return out

    def set_params(self, **params: Any) -> Self:
        """Set the parameters of this estimator (``<name>__<parameter>`` for nested ones).

        Parameters
        ----------
        **params : dict
            Estimator parameters.

        Returns
        -------
        self
            This estimator.

        Raises
        ------
        ValueError
            If a parameter does not exist, scikit-learn's message.
        """
        if not params:
            return self
        valid = self.get_params(deep=True)
        nested: dict[str, dict[str, Any]] = defaultdict(dict)
        for key, value in params.items():
            key, delim, sub_key = key.partition("__")
            if key not in valid:
                raise ValueError(f"Invalid parameter {key!r} for estimator {self}. "
                                 f"Valid parameters are: {self._get_param_names()!r}.")
            if delim:
                nested[key][sub_key] = value
            else:
                setattr(self, key, value)
                valid[key] = value
        for key, sub_params in nested.items():
            valid[key].set_params(**sub_params)
        return self

    def __sklearn_clone__(self) -> Self:
        return clone(self)

    def __repr__(self) -> str:
        defaults = {name: p.default for name, p in
                    inspect.signature(type(self).__init__).parameters.items()}
        changed = [f"{name}={value!r}" for name, value in self.get_params(deep=False).items()
                   if _differs(value, defaults.get(name, inspect.Parameter.empty))]
        return f"{type(self).__name__}({', '.join(changed)})"

    def __setstate__(self, state: dict[str, Any]) -> None:
        # Files saved while the class derived from BaseEstimator may hold its version key.
        state = dict(state)
        state.pop("_sklearn_version", None)
        self.__dict__.update(state)

    def __sklearn_tags__(self) -> Any:
        # Only scikit-learn asks for tags, so it is loaded already.
        from sklearn.utils import Tags, TargetTags

        return Tags(estimator_type=None, target_tags=TargetTags(required=False),
                    transformer_tags=None, regressor_tags=None, classifier_tags=None)


class Transformer(Estimator):
    """``TransformerMixin``: ``fit_transform`` and ``set_output`` (pandas, polars)."""

    def fit_transform(self, X: Any, y: Any = None, **fit_params: Any) -> Any:
        """Fit to ``X``, then transform it.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
            Input samples.
        y : None
            Ignored.
        **fit_params : dict
            Passed to ``fit``.

        Returns
        -------
        ndarray or DataFrame
            As `transform` returns it.
        """
        return self.fit(X, y, **fit_params).transform(X)

    def set_output(self, *, transform: str | None = None) -> Self:
        """Choose the container `transform` returns, as scikit-learn's ``set_output``.

        Parameters
        ----------
        transform : {"default", "pandas", "polars"} or None, default=None
            ``"default"``: a numpy array; ``"pandas"``/``"polars"``: a DataFrame with the
            ``get_feature_names_out()`` columns; None: unchanged.

        Returns
        -------
        self
            This estimator.
        """
        if transform is None:
            return self
        if not hasattr(self, "_sklearn_output_config"):
            self._sklearn_output_config: dict[str, Any] = {}
        self._sklearn_output_config["transform"] = transform
        return self

    def _wrap_output(self, out: np.ndarray, X: Any) -> Any:
        """Return ``out`` in the container chosen by `set_output` (or scikit-learn's config)."""
        config = getattr(self, "_sklearn_output_config", {}).get("transform")
        if config is None:  # scikit-learn's global config, if anyone could have set it
            sklearn = sys.modules.get("sklearn")
            config = sklearn.get_config()["transform_output"] if sklearn else "default"
        if config == "default":
            return out
        if config == "pandas":
            index = X.index if isinstance(X, pd.DataFrame) else None
            return pd.DataFrame(out, index=index, columns=self.get_feature_names_out())
        from sklearn.utils._set_output import _wrap_data_with_container

        return _wrap_data_with_container("transform", out, X, self)

    def __sklearn_tags__(self) -> Any:
        from sklearn.utils import TransformerTags

        tags = super().__sklearn_tags__()
        tags.transformer_tags = TransformerTags()
        return tags


def clone(estimator: Any) -> Any:
    """Return a new unfitted estimator with the same parameters (``sklearn.base.clone``).

    Estimators of this module are rebuilt here (nested ones cloned, other parameters deep
    copied, the ``set_output`` choice kept); anything else goes to scikit-learn's ``clone``.

    Parameters
    ----------
    estimator : estimator
        The estimator to clone.

    Returns
    -------
    estimator
        Unfitted, of the same class.
    """
    if not isinstance(estimator, Estimator):
        from sklearn.base import clone as sklearn_clone

        return sklearn_clone(estimator)
    params = {name: clone(value) if hasattr(value, "get_params")
              and not isinstance(value, type) else copy.deepcopy(value)
              for name, value in estimator.get_params(deep=False).items()}
    new = type(estimator)(**params)
    if hasattr(estimator, "_sklearn_output_config"):
        new._sklearn_output_config = copy.deepcopy(estimator._sklearn_output_config)
    return new


def check_is_fitted(estimator: Any) -> None:
    """Raise scikit-learn's ``NotFittedError`` unless ``estimator`` has fitted attributes.

    Fitted means an attribute ending with ``_`` (scikit-learn's rule); an unfitted
    estimator, or one with its own ``__sklearn_is_fitted__``, is left to scikit-learn.

    Parameters
    ----------
    estimator : estimator
        The estimator to check.
    """
    if not hasattr(estimator, "__sklearn_is_fitted__") and any(
            name.endswith("_") and not name.startswith("__") for name in vars(estimator)):
        return
    from sklearn.utils.validation import check_is_fitted as sklearn_check_is_fitted

    sklearn_check_is_fitted(estimator)


def validate_data(estimator: Estimator, X: Any, *, reset: bool) -> np.ndarray:
    """``sklearn.utils.validation.validate_data(..., dtype=float64, ensure_all_finite=True)``.

    The plain case is done here: a 2-D numpy array, or a DataFrame with string column
    names, of real numbers (numpy dtypes), finite, at least one row and one column, and at
    ``reset=False`` the columns seen in ``fit`` (same names, same order). It returns the
    float64 array and, with ``reset=True``, sets ``n_features_in_`` and
    ``feature_names_in_`` (removed for unnamed input). Anything else is passed to
    scikit-learn's ``validate_data``, which converts it or raises its own error.

    Parameters
    ----------
    estimator : Estimator
        The estimator fitting (``reset=True``) or transforming (``reset=False``).
    X : array-like
        The input.
    reset : bool
        True in ``fit``: record the features; False: check them against ``fit``.

    Returns
    -------
    ndarray of shape (n_samples, n_features), dtype=float64
    """
    plain = _plain_array(X)
    if plain is not None:
        array, names = plain
        if reset or _same_features(estimator, array.shape[1], names):
            if reset:
                estimator.n_features_in_ = array.shape[1]
                if names is None:
                    vars(estimator).pop("feature_names_in_", None)
                else:
                    estimator.feature_names_in_ = names
            return array
    from sklearn.utils.validation import validate_data as sklearn_validate_data

    return sklearn_validate_data(estimator, X, reset=reset, dtype=np.float64,
                                 ensure_all_finite=True)


def feature_names_out(estimator: Estimator, input_features: Any = None) -> np.ndarray:
    """Return the input feature names, as scikit-learn's ``_check_feature_names_in``.

    ``feature_names_in_`` or ``x0, x1, ...`` when ``input_features`` is None; otherwise
    scikit-learn checks ``input_features`` against the fitted features.

    Parameters
    ----------
    estimator : Estimator
        A fitted estimator.
    input_features : array-like of str or None, default=None
        Names given by the caller.

    Returns
    -------
    ndarray of str, dtype=object
    """
    if input_features is None:
        names = getattr(estimator, "feature_names_in_", None)
        if names is not None:
            return np.asarray(names, dtype=object)
        return np.asarray([f"x{i}" for i in range(estimator.n_features_in_)], dtype=object)
    from sklearn.utils.validation import _check_feature_names_in

    return _check_feature_names_in(estimator, input_features)


def _plain_array(X: Any) -> tuple[np.ndarray, np.ndarray | None] | None:
    """``(float64 array, column names or None)`` for plain input, else None."""
    if isinstance(X, pd.DataFrame):
        if not all(isinstance(c, str) for c in X.columns) or not all(
                isinstance(d, np.dtype) and d.kind in "iuf" for d in X.dtypes):
            return None
        names = np.asarray(X.columns, dtype=object)
        array = X.to_numpy(dtype=np.float64)
    elif isinstance(X, np.ndarray) and X.dtype.kind in "iuf":
        names, array = None, np.asarray(X, dtype=np.float64)
    else:
        return None
    if array.ndim != 2 or 0 in array.shape or not np.isfinite(array).all():
        return None
    return array, names


def _same_features(estimator: Estimator, n_features: int, names: np.ndarray | None) -> bool:
    fitted = getattr(estimator, "feature_names_in_", None)
    if n_features != getattr(estimator, "n_features_in_", None):
        return False
    if fitted is None or names is None:
        return fitted is None and names is None
    return bool(np.array_equal(fitted, names))


def _differs(value: Any, default: Any) -> bool:
    """Whether a parameter differs from its default, for the repr (as scikit-learn's)."""
    if default is inspect.Parameter.empty or type(value) is not type(default):
        return True
    try:
        return bool(repr(value) != repr(default))
    except Exception:  # noqa: BLE001 - an odd object: show it
        return True
