/* Core v1 PersistentVolume and PersistentVolumeClaim: names shared by their admission
 * (api/storage.c) and the controller that binds and provisions them (controllers/volumes). */
#ifndef TY_API_STORAGE_H
#define TY_API_STORAGE_H

/* The class a claim without storageClassName gets (the default StorageClass of a kind or
 * minikube cluster); the binder provisions volumes for it and for TY_STORAGE_LOCAL_PATH_CLASS
 * (k3s' and the local-path provisioner's name). */
#define TY_STORAGE_DEFAULT_CLASS "standard"
#define TY_STORAGE_LOCAL_PATH_CLASS "local-path"
/* The provisioner named on the volumes trainyard provisions. */
#define TY_STORAGE_PROVISIONER "trainyard.dev/local-path"

#endif
