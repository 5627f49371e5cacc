"""multiclass's Hydra plugins. Hydra imports every module under the `hydra_plugins` namespace
package at start-up, so these modules stay small and import nothing heavy."""
